//! `1ctl profile`: named API endpoints with their credentials, kept in the
//! configuration file.

use crate::cli::ProfileCommand;
use crate::config::{Profile, validate_profile_name};
use crate::context::{Context, Source};
use crate::error::CliError;
use crate::output::note;
use crate::views::{CurrentProfile, Done, ProfileView};

pub fn run(ctx: &mut Context, cmd: ProfileCommand) -> Result<(), CliError> {
    match cmd {
        ProfileCommand::List => list(ctx),
        ProfileCommand::Create { name } => create(ctx, name),
        ProfileCommand::Use { name } => use_profile(ctx, &name),
        ProfileCommand::Current => current(ctx),
        ProfileCommand::Delete { name } => delete(ctx, &name),
    }
}

fn view(ctx: &Context, name: &str, p: &Profile) -> ProfileView {
    ProfileView {
        name: name.to_owned(),
        active: ctx.config.active_profile.as_deref() == Some(name),
        api_url: p.api_url.clone(),
        email: p.email.clone(),
        org: p.org.clone(),
        logged_in: p.token.is_some(),
    }
}

fn list(ctx: &Context) -> Result<(), CliError> {
    let views: Vec<_> = ctx
        .config
        .profiles
        .iter()
        .map(|(n, p)| view(ctx, n, p))
        .collect();
    ctx.printer.list(&views, "No profiles yet: `1ctl profile create NAME --api-url URL` makes one, `1ctl auth login` makes `default`.")?;
    Ok(())
}

fn create(ctx: &mut Context, name: String) -> Result<(), CliError> {
    validate_profile_name(&name).map_err(CliError::usage)?;
    if ctx.config.profiles.contains_key(&name) {
        return Err(
            CliError::refused(format!("profile `{name}` already exists"))
                .hint(format!("use it with `1ctl profile use {name}`")),
        );
    }
    let api_url = match ctx.api_url_source {
        Source::Flag | Source::Env => {
            satusky_client::parse_base_url(&ctx.api_url)?;
            Some(ctx.api_url.clone())
        }
        Source::Profile | Source::Default => None,
    };
    ctx.config.profiles.insert(
        name.clone(),
        Profile {
            api_url,
            ..Profile::default()
        },
    );
    let became_active = ctx.config.active_profile.is_none();
    if became_active {
        ctx.config.active_profile = Some(name.clone());
    }
    ctx.save()?;
    note(&format!(
        "Created profile `{name}`{}.",
        if became_active {
            " and made it active"
        } else {
            ""
        }
    ));
    let v = view(ctx, &name, &ctx.config.profiles[&name]);
    ctx.printer.one(&v)?;
    Ok(())
}

fn use_profile(ctx: &mut Context, name: &str) -> Result<(), CliError> {
    let Some(p) = ctx.config.profiles.get(name).cloned() else {
        return Err(
            CliError::refused(format!("profile `{name}` does not exist"))
                .hint("run `1ctl profile list` to see the profiles"),
        );
    };
    ctx.config.active_profile = Some(name.to_owned());
    ctx.save()?;
    note(&format!("Using profile `{name}`."));
    ctx.printer.one(&view(ctx, name, &p))?;
    Ok(())
}

fn current(ctx: &Context) -> Result<(), CliError> {
    let p = ctx.profile();
    let current = CurrentProfile {
        name: ctx.profile_name.clone(),
        name_source: ctx.profile_source,
        exists: p.is_some(),
        api_url: ctx.api_url.clone(),
        api_url_source: ctx.api_url_source,
        org: p.and_then(|p| p.org.clone()),
        email: p.and_then(|p| p.email.clone()),
        logged_in: ctx.token.is_some(),
        token_source: ctx.token_source,
        config_file: ctx.store.path().display().to_string(),
    };
    ctx.printer.one(&current)?;
    Ok(())
}

fn delete(ctx: &mut Context, name: &str) -> Result<(), CliError> {
    if !ctx.config.profiles.contains_key(name) {
        return Err(
            CliError::refused(format!("profile `{name}` does not exist"))
                .hint("run `1ctl profile list` to see the profiles"),
        );
    }
    if ctx.config.active_profile.as_deref() == Some(name) {
        return Err(
            CliError::refused(format!("profile `{name}` is the active profile"))
                .hint("switch to another one first with `1ctl profile use NAME`"),
        );
    }
    ctx.config.profiles.remove(name);
    ctx.save()?;
    note(&format!("Deleted profile `{name}`."));
    ctx.printer.data(&Done {
        kind: "profile",
        id: name.to_owned(),
        action: "deleted",
    })?;
    Ok(())
}
