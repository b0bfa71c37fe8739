//! `1ctl init`: writes a commented satusky.toml for the app in this
//! directory; never overwrites one without `--force`.

use serde::Serialize;

use crate::cli::InitArgs;
use crate::context::Context;
use crate::error::CliError;
use crate::output::note;
use crate::project;

#[derive(Debug, Serialize)]
struct Written {
    path: String,
    app: String,
}

fn valid_name(name: &str) -> bool {
    name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

pub fn run(ctx: &Context, args: InitArgs) -> Result<(), CliError> {
    let io = |what: String| {
        move |e: std::io::Error| CliError::unexpected(&anyhow::Error::new(e).context(what))
    };
    let cwd = std::env::current_dir().map_err(io("cannot read the current directory".into()))?;
    let path = match args.config.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => project::named_path(&cwd, c),
        None => cwd.join(project::FILE_NAME),
    };
    if path.exists() && !args.force {
        return Err(
            CliError::refused(format!("{} already exists", path.display()))
                .hint("pass --force to overwrite it"),
        );
    }
    let base = args
        .config
        .as_ref()
        .and_then(|_| project::find_upward(&cwd))
        .filter(|b| *b != path);
    let (text, name) = if let Some(base) = base {
        let text = std::fs::read_to_string(&base)
            .map_err(io(format!("cannot read {}", base.display())))?;
        let name = project::parse(&text)
            .ok()
            .and_then(|p| p.app.name)
            .unwrap_or_default();
        note(&format!("Seeded from {}.", base.display()));
        (text, name)
    } else {
        let name = match args.name {
            Some(n) => n,
            None => project::app_name_from_dir(&cwd).ok_or_else(|| {
                CliError::usage("cannot make an app name from this directory's name")
                    .hint("pass --name NAME")
            })?,
        };
        if !valid_name(&name) {
            return Err(CliError::usage(format!(
                "`{name}` is not a valid app name: lowercase letters, digits and `-`, starting with a letter, at most 63 characters"
            )));
        }
        (
            project::template(&name, args.image.as_deref(), args.port),
            name,
        )
    };
    std::fs::write(&path, text).map_err(io(format!("cannot write {}", path.display())))?;
    note(&format!(
        "Wrote {} for app `{name}`; deploy it with `{} deploy`.",
        path.display(),
        ctx.prefix()
    ));
    ctx.printer.data(&Written {
        path: path.display().to_string(),
        app: name,
    })?;
    Ok(())
}
