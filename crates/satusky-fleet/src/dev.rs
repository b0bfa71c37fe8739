//! `satusky dev`: simulated Talos machines (talos-sim) wired to a running
//! fleet runtime. Feature `dev`.
//!
//! The machines provision through the runtime's SideroLink server with a join
//! token created through core for the given organization, publish to its
//! event sink, and register as nodes through `kube`. Their Talos APIs listen
//! on loopback ports, which [`StaticEndpoints`] maps per UUID, and the
//! simulator's admin certificate becomes the Talos identity of the ports.

use std::sync::Arc;

use satusky_core::services::{Ctx, Services};
use satusky_types::machines::CreateJoinTokenRequest;

use crate::FleetHandle;
use crate::provision::StaticEndpoints;
use crate::talos_ops::{TalosClientOps, TalosIdentity};

pub use talos_sim::{Fleet as SimFleet, Timings as SimTimings};

/// Failure to start simulated machines.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error("could not create the join token for the simulated machines")]
    JoinToken(#[source] satusky_core::Error),
    #[error("could not start the simulated machines")]
    Sim(#[source] talos_sim::SimError),
}

/// What [`start_sim_machines`] needs.
pub struct SimMachines<'a> {
    pub services: &'a Services,
    /// A member of `org` allowed to create join tokens (the dev admin).
    pub ctx: &'a Ctx,
    pub org: &'a str,
    pub handle: &'a FleetHandle,
    /// The resolver given to [`crate::FleetConfig::endpoints`].
    pub endpoints: &'a Arc<StaticEndpoints>,
    pub talos: &'a TalosClientOps,
    pub kube: kube::Client,
    pub count: usize,
    pub timings: SimTimings,
}

/// Starts `count` simulated machines joining `org`; keep the returned fleet
/// alive for as long as they should run (`SimFleet::stop` winds them down).
pub async fn start_sim_machines(m: SimMachines<'_>) -> Result<SimFleet, DevError> {
    let name = format!(
        "dev-sim-{}",
        m.services.clock().now().format("%Y%m%d%H%M%S%3f")
    );
    let created = m
        .services
        .create_join_token(
            m.ctx,
            m.org,
            &CreateJoinTokenRequest {
                name,
                expires_in_hours: Some(8760),
            },
        )
        .await
        .map_err(DevError::JoinToken)?;
    let fleet = SimFleet::builder()
        .machines(m.count)
        .siderolink_endpoint(m.handle.siderolink_url())
        .join_token(created.token)
        .event_sink(m.handle.event_sink_addr().to_string())
        .kube_client(m.kube)
        .timings(m.timings)
        .start()
        .await
        .map_err(DevError::Sim)?;
    let admin = fleet.admin_identity();
    m.talos.set_identity(TalosIdentity {
        ca_pem: fleet.ca_pem().to_owned(),
        cert_pem: admin.cert_pem.clone(),
        key_pem: admin.key_pem.clone(),
        server_name: None,
    });
    for machine in fleet.machines() {
        m.endpoints
            .insert(machine.uuid(), machine.api_addr().to_string());
    }
    Ok(fleet)
}
