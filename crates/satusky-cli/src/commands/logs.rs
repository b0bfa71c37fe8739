//! `1ctl logs`: an app's container log lines, the last ones (one request)
//! or followed over a WebSocket until interrupted.

use satusky_types::apps::{LogLine, LogsQuery};

use crate::cli::{LogsArgs, LogsCommand, LogsOptions, OutputFormat};
use crate::commands::app::{Target, target};
use crate::context::Context;
use crate::error::CliError;
use crate::output::{Row, note};

impl Row for LogLine {
    const HEADERS: &'static [&'static str] = &["POD", "LINE"];
    fn cells(&self) -> Vec<String> {
        vec![self.pod.clone(), self.line.clone()]
    }
}

pub async fn run(ctx: &Context, args: LogsArgs) -> Result<(), CliError> {
    let LogsArgs {
        target: t,
        command,
        opts,
        name,
    } = args;
    let (opts, name, follow) = match command {
        Some(LogsCommand::Stream { opts, name }) => (opts, name, true),
        None => {
            let follow = opts.follow;
            (opts, name, follow)
        }
    };
    let Target { client, org, app } = target(ctx, &t, name)?;
    let query = query(&opts);
    if follow {
        let stream = client.app_logs_stream(&org, &app, &query).await?;
        if ctx.printer.is_table() {
            note(&format!("Following the logs of `{app}`; Ctrl-C stops."));
        }
        crate::follow::follow(stream, |line| print_line(ctx, &line, opts.pod.is_some())).await?;
    } else {
        let page = client.app_logs(&org, &app, &query).await?;
        if ctx.printer.is_table() {
            if page.items.is_empty() {
                note(&format!("No log lines of `{app}`."));
            }
            for line in &page.items {
                print_line(ctx, line, opts.pod.is_some())?;
            }
        } else {
            ctx.printer.data(&page.items)?;
        }
    }
    Ok(())
}

fn query(opts: &LogsOptions) -> LogsQuery {
    LogsQuery {
        tail: opts.tail,
        since_seconds: opts.since.map(|d| d.as_secs()),
        pod: opts.pod.clone().filter(|p| !p.is_empty()),
    }
}

/// `[pod] line` (just the line when one pod was asked for); JSON: one object per line.
fn print_line(ctx: &Context, line: &LogLine, one_pod: bool) -> Result<(), CliError> {
    match ctx.printer.format {
        OutputFormat::Table if one_pod => println!("{}", line.line),
        OutputFormat::Table => println!("[{}] {}", line.pod, line.line),
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string(line).map_err(anyhow::Error::from)?
        ),
        OutputFormat::Yaml => print!(
            "---\n{}",
            serde_yaml::to_string(line).map_err(anyhow::Error::from)?
        ),
    }
    Ok(())
}
