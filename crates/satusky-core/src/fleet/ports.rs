//! Ports of machine operations. The core decides *what* happens and in which
//! order (`crate::machines::on` plans it, `Services` runs the plan); these
//! traits do it: [`NodeOps`] on the Kubernetes node (kube-rs in production),
//! [`TalosOps`] on the machine itself (the Talos API over SideroLink).
//!
//! Implementations must be idempotent per call (a resumed operation may
//! repeat the step it was in when the control plane stopped), bound every
//! call with a timeout, and name the object in their errors.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use satusky_types::machines::{DrainReport, MachineMetrics};

/// A failed port call. The message reaches machine events and API answers.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The node or machine does not exist (any more).
    #[error("{0} not found")]
    NotFound(String),
    /// The machine or the API server did not answer in time.
    #[error("{what} is unreachable")]
    Unreachable {
        what: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// Anything else, with a message fit for users.
    #[error("{message}")]
    Failed {
        message: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl OpsError {
    pub fn failed(message: impl Into<String>) -> Self {
        Self::Failed {
            message: message.into(),
            source: None,
        }
    }

    pub fn unreachable(what: impl Into<String>) -> Self {
        Self::Unreachable {
            what: what.into(),
            source: None,
        }
    }
}

/// How to drain a node. Evictions honour PodDisruptionBudgets; the drain
/// gives up after `timeout` and reports what blocked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainOptions {
    pub timeout: Duration,
    /// Also evict pods with emptyDir volumes (their data is lost).
    pub delete_emptydir_data: bool,
}

impl Default for DrainOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_mins(5),
            delete_emptydir_data: false,
        }
    }
}

/// Called with each intermediate report while a drain runs.
pub type DrainProgress<'a> = &'a (dyn Fn(&DrainReport) + Send + Sync);

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeCondition {
    /// `Ready`, `MemoryPressure`, …
    pub kind: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    pub reason: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeStatus {
    /// The `Ready` condition is `True`.
    pub ready: bool,
    /// `spec.unschedulable` (cordoned).
    pub unschedulable: bool,
    pub conditions: Vec<NodeCondition>,
    /// `status.nodeInfo.bootID`: the kubelet reports a new one after every
    /// boot, so a reboot is over when the node is Ready with another one.
    /// `None` when the kubelet reports none.
    pub boot_id: Option<String>,
    /// The node carries the label `node-role.kubernetes.io/control-plane`
    /// (it runs an etcd member on Talos).
    pub control_plane: bool,
}

/// The node label of control-plane nodes.
pub const CONTROL_PLANE_LABEL: &str = "node-role.kubernetes.io/control-plane";

/// The Kubernetes side of a machine, by node name. Label keys are node
/// label keys (`satusky.com/pool`, `topology.kubernetes.io/zone`, …; see
/// `crate::fleet::labels::node_labels`).
#[async_trait]
pub trait NodeOps: Send + Sync + std::fmt::Debug + 'static {
    /// Sets and removes labels; keys not named stay as they are.
    async fn set_labels(
        &self,
        node: &str,
        set: &BTreeMap<String, String>,
        unset: &[String],
    ) -> Result<(), OpsError>;
    /// Sets `spec.unschedulable`.
    async fn cordon(&self, node: &str, unschedulable: bool) -> Result<(), OpsError>;
    /// Evicts the node's pods (not DaemonSet or mirror pods), honouring
    /// disruption budgets, until none remain or `opts.timeout` passes. A
    /// drain that cannot finish returns a report with phase `timed_out` or
    /// `failed` and its blockers; `Err` is for calls that did not happen.
    async fn drain(
        &self,
        node: &str,
        opts: &DrainOptions,
        progress: DrainProgress<'_>,
    ) -> Result<DrainReport, OpsError>;
    /// `None` when the node does not exist.
    async fn node_status(&self, node: &str) -> Result<Option<NodeStatus>, OpsError>;
    /// Deletes the Node object; a missing node is success.
    async fn delete_node(&self, node: &str) -> Result<(), OpsError>;
}

/// Which machine a Talos call is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TalosTarget {
    pub machine_id: String,
    pub uuid: String,
    /// Where its Talos API answers (`host:port`, normally on the overlay).
    pub endpoint: String,
    pub overlay_address: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResetOptions {
    /// Drain, stop services and leave etcd first (Talos `graceful`); always
    /// set for a control-plane node, whose etcd member must leave the
    /// cluster before its data is wiped.
    pub graceful: bool,
    /// Also wipe user disks (never by default).
    pub wipe_user_disks: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceHealth {
    pub id: String,
    pub state: String,
    pub healthy: bool,
}

/// How a machine's Talos API answers (see [`TalosOps::api_mode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiMode {
    /// It answers our client identity: it still has its machine config.
    Configured,
    /// It answers in maintenance mode (no config: reset, or never installed).
    Maintenance,
    /// It answers neither (down, rebooting, or its link is gone).
    Unreachable,
}

impl ApiMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiMode::Configured => "configured",
            ApiMode::Maintenance => "maintenance",
            ApiMode::Unreachable => "unreachable",
        }
    }
}

/// The machine side, through the Talos API. Calls return once Talos has
/// accepted the request (a reboot is in progress, not finished).
#[async_trait]
pub trait TalosOps: Send + Sync + std::fmt::Debug + 'static {
    async fn reboot(&self, m: &TalosTarget) -> Result<(), OpsError>;
    async fn shutdown(&self, m: &TalosTarget) -> Result<(), OpsError>;
    /// Wipes EPHEMERAL and STATE (and user disks only when asked) and reboots
    /// into maintenance mode.
    async fn reset(&self, m: &TalosTarget, opts: ResetOptions) -> Result<(), OpsError>;
    async fn metrics(&self, m: &TalosTarget) -> Result<MachineMetrics, OpsError>;
    /// The Talos version string (`v1.13.0`).
    async fn version(&self, m: &TalosTarget) -> Result<String, OpsError>;
    async fn services(&self, m: &TalosTarget) -> Result<Vec<ServiceHealth>, OpsError>;
    /// Forgets the machine's SideroLink peer (WireGuard) so it is disconnected.
    async fn remove_link(&self, m: &TalosTarget) -> Result<(), OpsError>;
    /// Whether the machine's API answers our identity, answers in
    /// maintenance mode (`Version` without a client certificate, as Omni
    /// checks), or not at all. One probe, bounded by the RPC timeout; `Err`
    /// only when the probe cannot be made (no identity configured).
    async fn api_mode(&self, m: &TalosTarget) -> Result<ApiMode, OpsError>;
}
