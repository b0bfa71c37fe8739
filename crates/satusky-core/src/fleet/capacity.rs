//! The port through which placement previews read a node's room: what it
//! can hold (allocatable) and what its pods already request, as the
//! scheduler counts them.

use super::ports::OpsError;

/// A node's capacity and what is requested on it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeCapacity {
    /// `status.allocatable.cpu`, in millicores.
    pub cpu_allocatable_millis: u64,
    /// `status.allocatable.memory`, in bytes.
    pub memory_allocatable_bytes: u64,
    /// `status.allocatable.pods`.
    pub pods_allocatable: u32,
    /// Sum of the CPU requests of the node's pods that are not finished.
    pub cpu_requested_millis: u64,
    /// Sum of their memory requests.
    pub memory_requested_bytes: u64,
    /// How many pods (not finished) the node runs.
    pub pods: u32,
    /// Ready and schedulable: not cordoned, no `NoSchedule`/`NoExecute`
    /// taint. When `false`, `reason` says why.
    pub schedulable: bool,
    pub reason: Option<String>,
}

/// Reads of node capacity (kube-rs in production).
#[async_trait::async_trait]
pub trait CapacityOps: Send + Sync + std::fmt::Debug + 'static {
    /// `None` when the node does not exist.
    async fn capacity(&self, node: &str) -> Result<Option<NodeCapacity>, OpsError>;
}
