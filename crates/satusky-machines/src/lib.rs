//! Control-plane side of Satusky's Talos machine management.
//!
//! - [`provision`]: a SideroLink `sidero.link.ProvisionService` server. Join tokens are
//!   checked through the [`provision::ProvisionPolicy`] trait; overlay addresses come
//!   from the installation's ULA /64 ([`overlay`]).
//! - [`jointoken`]: signed join tokens (HMAC-SHA256, Omni's `v1:` shape) with expiry,
//!   and an in-memory [`jointoken::JoinTokenRegistry`] policy with revocation.
//! - [`unique`]: per-node unique tokens and UUID conflicts, wrapping another policy.
//! - [`sink`]: the `events.EventSinkService` server; decoded events go into a channel.
//! - [`kmsg`]: the kernel-log receiver (JSON lines over TCP).
//! - [`talos`]: a Talos machine API client over mTLS with per-RPC deadlines.
//! - [`wireguard`]: the userspace WireGuard endpoint of SideroLink (gotatun's
//!   Noise_IK state machine over one UDP socket): admitted peers only, link
//!   state from handshakes and keepalives.
//!
//! Prost and generated types never leave this crate: every public function takes and
//! returns the plain types of [`types`] and [`events`].

pub mod events;
pub mod jointoken;
pub mod kmsg;
mod maintenance;
pub mod overlay;
pub mod provision;
pub mod sink;
pub mod talos;
pub mod types;
pub mod unique;
pub mod wireguard;

pub use events::{EventPayload, MachineEvent, MachineStage};
pub use jointoken::{JoinTokenError, JoinTokenKey, JoinTokenRegistry};
pub use kmsg::{KernelLogRecord, KmsgReceiver};
pub use overlay::{AddressAllocator, OverlayPrefix};
pub use provision::{
    Admission, ProvisionPolicy, ProvisionRequestInfo, ProvisionServer, ProvisionServerConfig,
    ProvisionedMachine, Refusal,
};
pub use sink::{EventSinkServer, SinkEvent};
pub use talos::{ByteStream, EventStream, TalosClient, TalosClientConfig, TalosError};
pub use types::{
    CpuInfo, CpuTimes, DiskInfo, DiskIo, DiskIoStats, DiskKind, EventsQuery, LoadAverage,
    LogDriver, LogsQuery, MemoryInfo, NetDeviceStats, NetworkStats, RebootMode, ResetOptions,
    ServiceStatus, ServiceTransition, SystemStats, VersionInfo, WipeMode,
};
pub use unique::{UniqueToken, UniqueTokenPolicy};
pub use wireguard::{
    KeyError, LinkState, PeerConfig, PeerRef, PublicKey, WireguardEndpoint, WireguardError,
    WireguardKey, WireguardSettings,
};
