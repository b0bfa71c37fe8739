//! `1ctl cluster`: registered clusters (platform administrators) and the
//! zones apps can be placed in (everyone).

use crate::cli::ClusterCommand;
use crate::context::Context;
use crate::error::CliError;

pub async fn run(ctx: &Context, cmd: ClusterCommand) -> Result<(), CliError> {
    let client = ctx.client()?;
    match cmd {
        ClusterCommand::List => {
            let clusters = client.list_all_clusters().await?;
            ctx.printer.list(&clusters, "No clusters are registered.")?;
        }
        ClusterCommand::Zones => {
            let zones = client.list_zones().await?;
            ctx.printer
                .list(&zones, "No zones: no cluster is registered yet.")?;
        }
    }
    Ok(())
}
