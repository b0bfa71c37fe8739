//! Simulated Talos machines for Satusky's tests and `satusky dev`.
//!
//! Each machine has its own identity (UUID, hostname) and hardware, provisions through
//! SideroLink (`sidero.link.ProvisionService/Provision` with a join token), serves the
//! Talos machine API over mTLS on its own loopback port, publishes runtime events to
//! an `events.EventSinkService`, keeps service logs and a kernel log, reports changing
//! metrics in Talos units, and, once installed, registers and heartbeats as a
//! Kubernetes Node through a plain `kube::Client`, as a kubelet would.
//!
//! ```no_run
//! # async fn demo(kube: kube::Client) -> Result<(), talos_sim::SimError> {
//! let fleet = talos_sim::Fleet::builder()
//!     .machines(3)
//!     .siderolink_endpoint("grpc://127.0.0.1:8090")
//!     .join_token("v1:…")
//!     .event_sink("127.0.0.1:8091")
//!     .kube_client(kube)
//!     .start()
//!     .await?;
//! let m = fleet.machine(0);
//! println!("{} at {}", m.hostname(), m.api_addr());
//! # Ok(()) }
//! ```
//!
//! The simulator shares no code with Satusky's client side: it depends on
//! `satusky-proto` for the wire types only.

mod api;
pub mod config;
mod events;
pub mod fleet;
pub mod hardware;
mod kmsg;
mod kubelet;
mod logs;
pub mod machine;
mod metrics;
mod net;
pub mod pki;
mod siderolink;
mod sink;
mod wireguard;

use std::net::SocketAddr;

pub use config::{SiderolinkApi, SimConfig, Timings};
pub use fleet::{Fleet, FleetBuilder, MachineSpec};
pub use hardware::{Arch, CpuSpec, DiskKind, DiskSpec, GpuSpec, Hardware, NicSpec};
pub use kubelet::NODE_LEASE_NAMESPACE;
pub use machine::{Fault, Machine, ProvisionInfo, ProvisionStatus, Stage, WaitTimeout};
pub use pki::{Identity, Role};

/// Failure starting or running the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Generating certificates failed.
    #[error("generating certificates failed: {0}")]
    Pki(String),
    /// A listener could not be bound.
    #[error("binding {addr} failed")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The API server failed.
    #[error("serving the Talos API failed: {0}")]
    Serve(String),
}
