//! `1ctl`, the command-line client of Satusky.
//!
//! stdout carries data, stderr carries notes and errors. Exit status: 0
//! success, 1 refused request, 2 usage error, 3 unexpected failure.

mod app_views;
mod cli;
mod commands;
mod config;
mod context;
mod error;
mod follow;
mod machine_views;
mod output;
mod project;
mod prompt;
mod views;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use crate::cli::{Cli, EnvOnly};
use crate::context::{Context, Sources};
use crate::error::{CliError, ErrorContext, ExitStatus, Rendered};

fn main() -> ExitCode {
    let matches = match Cli::command().try_get_matches() {
        Ok(m) => m,
        Err(e) => return clap_exit(&e),
    };
    let sources = Sources {
        api_url: matches.value_source("api_url"),
        profile: matches.value_source("profile"),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => return clap_exit(&e),
    };
    let envs = match EnvOnly::read() {
        Ok(envs) => envs,
        Err(e) => return clap_exit(&e),
    };
    let no_color = envs.no_color();

    let mut ctx = match Context::resolve(cli.global, envs, &sources) {
        Ok(ctx) => ctx,
        Err(e) => {
            let fallback = ErrorContext {
                api_url: cli::DEFAULT_API_URL,
                api_url_source: "the default",
                prefix: "1ctl".to_owned(),
            };
            return report(error::render(e, &fallback), no_color);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let e = CliError::unexpected(
                &anyhow::Error::new(e).context("cannot start the async runtime"),
            );
            return report(error::render(e, &ctx.error_context()), no_color);
        }
    };
    match runtime.block_on(commands::run(&mut ctx, cli.command, &matches)) {
        Ok(()) => ExitCode::from(ExitStatus::Success as u8),
        Err(e) => report(error::render(e, &ctx.error_context()), no_color),
    }
}

/// Help and version exit 0 on stdout; every other clap error is a usage error.
fn clap_exit(e: &clap::Error) -> ExitCode {
    let _ = e.print();
    if e.use_stderr() {
        ExitCode::from(ExitStatus::Usage as u8)
    } else {
        ExitCode::SUCCESS
    }
}

/// `error: …` then `hint: …` lines on stderr.
fn report(r: Rendered, no_color: bool) -> ExitCode {
    let color = !no_color && std::io::stderr().is_terminal();
    let (red, yellow, reset) = if color {
        ("\x1b[1;31m", "\x1b[1;33m", "\x1b[0m")
    } else {
        ("", "", "")
    };
    eprintln!("{red}error{reset}: {}", r.message);
    for hint in &r.hints {
        eprintln!("{yellow}hint{reset}: {hint}");
    }
    ExitCode::from(r.status as u8)
}
