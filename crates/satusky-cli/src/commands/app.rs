//! `1ctl app`, `config`, `secret` and `volumes`: everything done to an app
//! after its deploy. The app is the APP argument or `--app`, else `[app].name`
//! of satusky.toml (or of the file `--config` names).

use std::collections::BTreeMap;

use satusky_client::Client;
use satusky_types::apps::{AppEvent, KeyValueChange};

use crate::app_views::{AppUrl, EnvVar, SecretKey, event_line, url};
use crate::cli::{
    AppArgs, AppCommand, ConfigArgs, ConfigCommand, SecretArgs, SecretCommand, TargetArgs,
    VolumesArgs, VolumesCommand,
};
use crate::context::Context;
use crate::error::CliError;
use crate::output::note;
use crate::project;
use crate::prompt;
use crate::views::Done;

/// The organization and app a command acts on, with a client.
pub struct Target {
    pub client: Client,
    pub org: String,
    pub app: String,
}

/// The app: the argument or `--app` (they must agree), else `[app].name` of
/// the satusky.toml found (or named by `--config`).
pub fn app_name(
    flag: Option<String>,
    positional: Option<String>,
    config: Option<&str>,
) -> Result<String, CliError> {
    let flag = flag.filter(|a| !a.is_empty());
    let positional = positional.filter(|a| !a.is_empty());
    match (positional, flag) {
        (Some(p), Some(f)) if p != f => Err(CliError::usage(format!(
            "two apps given: `{p}` and --app `{f}`"
        ))
        .hint("name the app once")),
        (Some(a), _) | (None, Some(a)) => Ok(a),
        (None, None) => {
            let loaded = project::load(config)?;
            match loaded.as_ref().and_then(|l| l.project.app.name.clone()) {
                Some(name) if !name.is_empty() => Ok(name),
                _ => {
                    let why = match &loaded {
                        Some(l) => format!("{} has no [app].name", l.path.display()),
                        None => "no satusky.toml in this directory or above".to_owned(),
                    };
                    Err(CliError::usage(format!("which app? {why}"))
                        .hint("name it: `1ctl app get APP`, or --app APP"))
                }
            }
        }
    }
}

pub fn target(
    ctx: &Context,
    args: &TargetArgs,
    positional: Option<String>,
) -> Result<Target, CliError> {
    let client = ctx.client()?;
    let org = ctx.org(args.org.clone())?;
    let app = app_name(args.app.clone(), positional, args.config.as_deref())?;
    Ok(Target { client, org, app })
}

fn done(kind: &'static str, id: String, action: &'static str) -> Done {
    Done { kind, id, action }
}

pub async fn run(ctx: &Context, args: AppArgs) -> Result<(), CliError> {
    let AppArgs { target: t, command } = args;
    match command {
        AppCommand::List => {
            let client = ctx.client()?;
            let org = ctx.org(t.org.clone())?;
            let apps = client.list_all_apps(&org).await?;
            let empty = format!(
                "No apps in `{org}` yet: `{} deploy` makes one.",
                ctx.prefix()
            );
            ctx.printer.list(&apps, &empty)?;
        }
        AppCommand::Get { name } => {
            let Target { client, org, app } = target(ctx, &t, name)?;
            let app = client.get_app(&org, &app).await?;
            ctx.printer.one(&app)?;
        }
        AppCommand::Status { name } => {
            let Target { client, org, app } = target(ctx, &t, name)?;
            let app = client.get_app(&org, &app).await?;
            if ctx.printer.is_table() {
                ctx.printer.one(&app.status)?;
                if !app.status.replicas.is_empty() {
                    println!();
                    ctx.printer.list(&app.status.replicas, "")?;
                }
            } else {
                ctx.printer.data(&app.status)?;
            }
        }
        AppCommand::Delete {
            name,
            delete_volumes,
            yes,
        } => {
            let Target { client, org, app } = target(ctx, &t, name)?;
            confirm_delete(&app, delete_volumes, yes)?;
            client.delete_app(&org, &app, delete_volumes).await?;
            note(&format!(
                "Deleting app `{app}`{}; it stops once every object is gone.",
                if delete_volumes {
                    " and its volumes"
                } else {
                    " (its volumes are kept)"
                }
            ));
            ctx.printer.data(&done("app", app, "deleting"))?;
        }
        AppCommand::Restart { name } => {
            let Target { client, org, app } = target(ctx, &t, name)?;
            let a = client.restart(&org, &app).await?;
            note(&format!("Restarting every replica of `{app}`."));
            ctx.printer.data(&a)?;
        }
        AppCommand::Releases { name } => {
            let Target { client, org, app } = target(ctx, &t, name)?;
            let releases = client.list_all_releases(&org, &app).await?;
            ctx.printer
                .list(&releases, &format!("App `{app}` has no release yet."))?;
        }
        AppCommand::Rollback { name, to } => {
            let Target { client, org, app } = target(ctx, &t, name)?;
            let d = client.rollback(&org, &app, to).await?;
            note(&format!(
                "Rolled `{app}` back to release {}: new release {}.",
                d.release
                    .rollback_of
                    .map_or_else(|| "?".to_owned(), |n| n.to_string()),
                d.release.number
            ));
            ctx.printer.one(&d)?;
        }
        AppCommand::Scale { args } => {
            let (name, replicas) = match args.as_slice() {
                [n] => (None, n),
                [a, n] => (Some(a.clone()), n),
                _ => return Err(CliError::usage("expected [APP] REPLICAS")),
            };
            let replicas: u32 = replicas.parse().map_err(|_| {
                CliError::usage(format!("`{replicas}` is not a number of replicas"))
                    .hint("`1ctl app scale 3`, or `1ctl app scale APP 3`")
            })?;
            let Target { client, org, app } = target(ctx, &t, name)?;
            let d = client.scale(&org, &app, replicas).await?;
            note(&format!(
                "Scaled `{app}` to {replicas} replica{}: release {}.",
                if replicas == 1 { "" } else { "s" },
                d.release.number
            ));
            ctx.printer.one(&d)?;
        }
        AppCommand::Open { name } => {
            let Target { client, org, app } = target(ctx, &t, name)?;
            let a = client.get_app(&org, &app).await?;
            let view = AppUrl {
                app: a.name.clone(),
                url: url(&a),
            };
            if ctx.printer.is_table() {
                println!("{}", view.url);
            } else {
                ctx.printer.data(&view)?;
            }
        }
        AppCommand::Events { name, follow, from } => {
            let Target { client, org, app } = target(ctx, &t, name)?;
            if follow {
                follow_events(ctx, &client, &org, &app, from).await?;
            } else {
                let events = client.list_all_events(&org, &app, from).await?;
                ctx.printer
                    .list(&events, &format!("No events of `{app}` after {from}."))?;
            }
        }
    }
    Ok(())
}

fn confirm_delete(app: &str, delete_volumes: bool, yes: bool) -> Result<(), CliError> {
    if yes {
        return Ok(());
    }
    if !prompt::interactive() {
        return Err(CliError::usage(format!(
            "refusing to delete app `{app}` without confirmation"
        ))
        .hint("pass --yes to delete it without being asked"));
    }
    note(&format!(
        "Deleting app `{app}` stops it and removes everything it runs{}.",
        if delete_volumes {
            ", and deletes its volumes with their data"
        } else {
            "; its volumes are kept"
        }
    ));
    let answer = prompt::line(&format!("Type `{app}` to confirm: "))?;
    if answer != app {
        return Err(CliError::refused(
            "the confirmation did not match; nothing was deleted",
        ));
    }
    Ok(())
}

/// Prints each event as it arrives (one JSON object per line with `-o json`)
/// until the server closes the stream or the user interrupts.
async fn follow_events(
    ctx: &Context,
    client: &Client,
    org: &str,
    app: &str,
    from: u64,
) -> Result<(), CliError> {
    let stream = client.events_stream(org, app, from).await?;
    if ctx.printer.is_table() {
        note(&format!("Following events of `{app}`; Ctrl-C stops."));
    }
    crate::follow::follow(stream, |event| print_event(ctx, &event)).await
}

fn print_event(ctx: &Context, event: &AppEvent) -> Result<(), CliError> {
    Ok(ctx.printer.item(event, event_line)?)
}

/// `KEY=VALUE` arguments; a key appears once.
pub fn parse_pairs(pairs: &[String], what: &str) -> Result<BTreeMap<String, String>, CliError> {
    let mut map = BTreeMap::new();
    for pair in pairs {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(CliError::usage(format!("`{pair}` is not KEY=VALUE"))
                .hint(format!("e.g. `1ctl {what} create LOG_LEVEL=debug`")));
        };
        if k.is_empty() {
            return Err(CliError::usage(format!("`{pair}` has an empty key")));
        }
        if map.insert(k.to_owned(), v.to_owned()).is_some() {
            return Err(CliError::usage(format!("`{k}` is given twice")));
        }
    }
    Ok(map)
}

/// All of standard input, less one trailing newline.
fn read_stdin_value() -> Result<String, CliError> {
    use std::io::Read as _;
    let mut value = String::new();
    std::io::stdin()
        .lock()
        .read_to_string(&mut value)
        .map_err(|e| {
            CliError::unexpected(&anyhow::Error::new(e).context("cannot read standard input"))
        })?;
    if value.ends_with('\n') {
        value.pop();
        if value.ends_with('\r') {
            value.pop();
        }
    }
    if value.is_empty() {
        return Err(CliError::usage("standard input holds no value"));
    }
    Ok(value)
}

fn released(kind: &str, app: &str, number: u64) {
    note(&format!("Changed the {kind} of `{app}`: release {number}."));
}

pub async fn config(ctx: &Context, args: ConfigArgs) -> Result<(), CliError> {
    let ConfigArgs { target: t, command } = args;
    let Target { client, org, app } = target(ctx, &t, None)?;
    match command {
        ConfigCommand::Create { pairs } => {
            let set = parse_pairs(&pairs, "config")?;
            let change = KeyValueChange {
                set,
                unset: Vec::new(),
            };
            let d = client.change_env(&org, &app, &change).await?;
            released("environment", &app, d.release.number);
            ctx.printer.one(&d)?;
        }
        ConfigCommand::List => {
            let env = client.get_env(&org, &app).await?;
            let vars: Vec<EnvVar> = env
                .into_iter()
                .map(|(key, value)| EnvVar { key, value })
                .collect();
            ctx.printer
                .list(&vars, &format!("App `{app}` has no variables."))?;
        }
        ConfigCommand::Unset { keys } => {
            let change = KeyValueChange {
                set: BTreeMap::new(),
                unset: keys,
            };
            let d = client.change_env(&org, &app, &change).await?;
            released("environment", &app, d.release.number);
            ctx.printer.one(&d)?;
        }
    }
    Ok(())
}

pub async fn secret(ctx: &Context, args: SecretArgs) -> Result<(), CliError> {
    let SecretArgs { target: t, command } = args;
    let Target { client, org, app } = target(ctx, &t, None)?;
    match command {
        SecretCommand::Create { pairs, value_stdin } => {
            let set = if value_stdin {
                let [key] = pairs.as_slice() else {
                    return Err(CliError::usage("--value-stdin takes exactly one KEY"));
                };
                if key.is_empty() || key.contains('=') {
                    return Err(CliError::usage(format!(
                        "with --value-stdin, give the KEY alone, not `{key}`"
                    )));
                }
                BTreeMap::from([(key.clone(), read_stdin_value()?)])
            } else {
                parse_pairs(&pairs, "secret")?
            };
            let change = KeyValueChange {
                set,
                unset: Vec::new(),
            };
            let d = client.change_secrets(&org, &app, &change).await?;
            released("secrets", &app, d.release.number);
            ctx.printer.one(&d)?;
        }
        SecretCommand::List => {
            let page = client.list_secrets(&org, &app).await?;
            // Keys and versions only: whatever the server sends as values
            // never reaches the output.
            let keys: Vec<SecretKey> = page
                .items
                .into_iter()
                .map(|s| SecretKey {
                    key: s.key,
                    version: s.version,
                })
                .collect();
            ctx.printer
                .list(&keys, &format!("App `{app}` has no secrets."))?;
        }
        SecretCommand::Get { key } => {
            // The one place a value is printed: one key, asked for by name.
            let entry = client.reveal_secret(&org, &app, &key).await?;
            if ctx.printer.is_table() {
                println!("{}", entry.value);
            } else {
                ctx.printer.data(&entry)?;
            }
        }
        SecretCommand::Unset { keys } => {
            let change = KeyValueChange {
                set: BTreeMap::new(),
                unset: keys,
            };
            let d = client.change_secrets(&org, &app, &change).await?;
            released("secrets", &app, d.release.number);
            ctx.printer.one(&d)?;
        }
    }
    Ok(())
}

pub async fn volumes(ctx: &Context, args: VolumesArgs) -> Result<(), CliError> {
    let VolumesArgs { target: t, command } = args;
    match command {
        VolumesCommand::List { name } => {
            let Target { client, org, app } = target(ctx, &t, name)?;
            let page = client.list_volumes(&org, &app).await?;
            ctx.printer
                .list(&page.items, &format!("App `{app}` has no volumes."))?;
        }
        VolumesCommand::Inspect { volume } => {
            let Target { client, org, app } = target(ctx, &t, None)?;
            let v = client.get_volume(&org, &app, &volume).await?;
            ctx.printer.one(&v)?;
        }
        VolumesCommand::Detach { volume } => {
            let Target { client, org, app } = target(ctx, &t, None)?;
            let d = client.detach_volume(&org, &app, &volume).await?;
            note(&format!(
                "volume `{volume}` detached in release {}; its data stays until `volumes delete`",
                d.release.number
            ));
            ctx.printer.one(&d.release)?;
        }
        VolumesCommand::Delete { volume, yes } => {
            let Target { client, org, app } = target(ctx, &t, None)?;
            if !yes {
                return Err(CliError::usage(format!(
                    "deleting volume `{volume}` of `{app}` destroys its data"
                ))
                .hint("add --yes to confirm"));
            }
            client.delete_volume(&org, &app, &volume).await?;
            note(&format!("volume `{volume}` of `{app}` deleted"));
            ctx.printer.data(&done("volume", volume, "deleted"))?;
        }
    }
    Ok(())
}
