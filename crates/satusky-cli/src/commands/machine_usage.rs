//! `machine usage`: the periods during which the organization held its
//! machines (billing history), with the hours of each and in all.

use std::time::Duration;

use satusky_client::Client;
use satusky_types::machines::{MachineUsage, MachineUsageQuery};

use crate::commands::machine::resolve;
use crate::context::Context;
use crate::error::CliError;
use crate::output::{Row, note, opt_time, time};

impl Row for MachineUsage {
    const HEADERS: &'static [&'static str] = &[
        "MACHINE", "CPU", "GPUS", "STARTED", "ENDED", "REASON", "HOURS",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.machine_name.clone(),
            self.cpu_cores.to_string(),
            self.gpus.to_string(),
            time(&self.started_at),
            opt_time(self.ended_at.as_ref()),
            self.end_reason.clone().unwrap_or_else(|| "held".to_owned()),
            hours(self.seconds),
        ]
    }
}

#[expect(clippy::cast_precision_loss, reason = "display only")]
fn hours(seconds: u64) -> String {
    format!("{:.2}", seconds as f64 / 3600.0)
}

pub async fn run(
    ctx: &Context,
    client: &Client,
    org: &str,
    machine: Option<String>,
    since: Option<Duration>,
) -> Result<(), CliError> {
    let machine = match machine {
        Some(reference) => Some(resolve(client, org, &reference, &ctx.prefix()).await?.id),
        None => None,
    };
    let since = since
        .and_then(|d| chrono::TimeDelta::from_std(d).ok())
        .map(|d| chrono::Utc::now() - d);
    let periods = client
        .all_machine_usage(
            org,
            &MachineUsageQuery {
                machine,
                since,
                ..MachineUsageQuery::default()
            },
        )
        .await?;
    if ctx.printer.is_table() && !periods.is_empty() {
        let total: u64 = periods.iter().map(|p| p.seconds).sum();
        note(&format!(
            "{} period{}, {} machine-hours in all.",
            periods.len(),
            if periods.len() == 1 { "" } else { "s" },
            hours(total)
        ));
    }
    ctx.printer.list(
        &periods,
        "No machine usage: no machine was claimed in that time.",
    )?;
    Ok(())
}
