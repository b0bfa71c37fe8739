//! The machine fleet beyond the lifecycle state machine (`crate::machines`):
//! signed join tokens ([`jointoken`]), machine labels and how they map to
//! Kubernetes node labels ([`labels`]), and the ports through which machine
//! operations reach Kubernetes and Talos ([`ports`]), and machine logs
//! ([`streams`]).

pub mod capacity;
pub mod jointoken;
pub mod labels;
pub mod ports;
pub mod streams;

/// Implementers of the ports use the same macro as their definition.
pub use async_trait::async_trait;
pub use capacity::{CapacityOps, NodeCapacity};
pub use jointoken::SigningKey;
pub use ports::{
    DrainOptions, DrainProgress, NodeCondition, NodeOps, NodeStatus, OpsError, ResetOptions,
    ServiceHealth, TalosOps, TalosTarget,
};
pub use streams::{LineStream, LogRequest, LogSource, MachineLogs};
