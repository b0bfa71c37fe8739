//! Bring-your-own machines: join tokens, the machine fleet, labels,
//! operations (cordon, drain, reboot, shutdown, decommission), health,
//! metrics and events.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a machine is in its life. See `satusky_core::machines::MachineState`
/// for the transitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MachineState {
    /// Provisioned through SideroLink with an organization's join token; not yet accepted.
    Discovered,
    /// Accepted by its organization; waiting to join Kubernetes.
    Claimed,
    /// A schedulable Kubernetes node.
    Joined,
    /// A node we cordoned.
    Cordoned,
    /// Being drained (pods evicted honouring disruption budgets).
    Draining,
    Rebooting,
    ShuttingDown,
    PoweredOff,
    /// Being drained, reset through Talos and removed.
    Decommissioning,
    /// Gone from Kubernetes and the link; history kept.
    Decommissioned,
    /// Removed by force while unreachable: its disks must be wiped out of band.
    NeedsWipe,
}

impl MachineState {
    pub fn as_str(self) -> &'static str {
        match self {
            MachineState::Discovered => "discovered",
            MachineState::Claimed => "claimed",
            MachineState::Joined => "joined",
            MachineState::Cordoned => "cordoned",
            MachineState::Draining => "draining",
            MachineState::Rebooting => "rebooting",
            MachineState::ShuttingDown => "shutting_down",
            MachineState::PoweredOff => "powered_off",
            MachineState::Decommissioning => "decommissioning",
            MachineState::Decommissioned => "decommissioned",
            MachineState::NeedsWipe => "needs_wipe",
        }
    }
}

impl std::str::FromStr for MachineState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "discovered" => MachineState::Discovered,
            "claimed" => MachineState::Claimed,
            "joined" => MachineState::Joined,
            "cordoned" => MachineState::Cordoned,
            "draining" => MachineState::Draining,
            "rebooting" => MachineState::Rebooting,
            "shutting_down" => MachineState::ShuttingDown,
            "powered_off" => MachineState::PoweredOff,
            "decommissioning" => MachineState::Decommissioning,
            "decommissioned" => MachineState::Decommissioned,
            "needs_wipe" => MachineState::NeedsWipe,
            other => return Err(format!("unknown machine state `{other}`")),
        })
    }
}

/// Who may see a machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// The member who claimed it and the organization's admins.
    Owner,
    /// Every member of the owning organization.
    #[default]
    Organization,
    /// Every organization, read-only outside the owner.
    Public,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Owner => "owner",
            Visibility::Organization => "organization",
            Visibility::Public => "public",
        }
    }
}

impl std::str::FromStr for Visibility {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "owner" => Visibility::Owner,
            "organization" => Visibility::Organization,
            "public" => Visibility::Public,
            other => {
                return Err(format!(
                    "unknown visibility `{other}` (owner, organization or public)"
                ));
            }
        })
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Hardware {
    pub arch: String,
    pub cpu_cores: u32,
    pub memory_bytes: u64,
    #[serde(default)]
    pub gpus: u32,
    #[serde(default)]
    pub disks: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Link {
    pub connected: bool,
    /// Overlay (SideroLink) address.
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Machine {
    pub id: String,
    pub name: String,
    /// SMBIOS UUID as reported; not unique on its own.
    pub uuid: String,
    /// Owning organization slug.
    pub org: String,
    pub state: MachineState,
    pub visibility: Visibility,
    /// User labels (stored without the `satusky.com/` prefix).
    pub labels: BTreeMap<String, String>,
    /// Read-only facts: arch, cpu, memory, gpu, zone, ….
    pub system_labels: BTreeMap<String, String>,
    pub hardware: Hardware,
    pub zone: String,
    pub link: Link,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// True when the caller's organization may operate it.
    pub operable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The running or last operation (cordon, drain, reboot, …) with its progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<MachineOperation>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateJoinTokenRequest {
    pub name: String,
    /// Lifetime in hours (1 to 8760); default 24.
    #[serde(default)]
    pub expires_in_hours: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JoinToken {
    pub id: String,
    pub name: String,
    pub org: String,
    pub expires_at: DateTime<Utc>,
    pub revoked: bool,
    pub created_at: DateTime<Utc>,
}

/// A new join token; `token` is shown once, with the kernel arguments to boot with.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JoinTokenCreated {
    pub join_token: JoinToken,
    pub token: String,
    pub kernel_args: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LabelsChange {
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    #[serde(default)]
    pub unset: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VisibilityRequest {
    pub visibility: Visibility,
}

/// Query of machine lists: a label selector over machine labels.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct MachineQuery {
    /// Kubernetes label-selector grammar, e.g. `pool=gpu,zone in (a,b),!maintenance`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DrainRequest {
    /// Give up after this many seconds (default 300); the node stays cordoned and the report says what blocked.
    #[serde(default)]
    pub timeout_seconds: Option<u32>,
    /// Also evict pods using emptyDir volumes (their data is lost).
    #[serde(default)]
    pub delete_emptydir_data: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PowerRequest {
    /// Skip the drain.
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DecommissionRequest {
    /// Remove even when unreachable; the machine is then marked `needs_wipe`.
    #[serde(default)]
    pub force: bool,
    /// Also wipe user disks (never by default).
    #[serde(default)]
    pub wipe_user_disks: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MachineEvent {
    pub seq: u64,
    pub kind: String,
    pub message: String,
    pub at: DateTime<Utc>,
}

/// Why a pod is still on a draining node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DrainBlocker {
    pub namespace: String,
    pub pod: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DrainReport {
    /// `running`, `completed`, `timed_out` or `failed`.
    pub phase: String,
    pub evicted: u32,
    pub remaining: u32,
    #[serde(default)]
    pub blockers: Vec<DrainBlocker>,
    pub started_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
}

/// One sample of machine telemetry, in SI units.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MachineMetrics {
    pub at: DateTime<Utc>,
    pub cpu_percent: f64,
    pub memory_used_bytes: u64,
    pub memory_total_bytes: u64,
    pub load1: f64,
    pub net_rx_bytes_per_sec: f64,
    pub net_tx_bytes_per_sec: f64,
    pub disk_read_bytes_per_sec: f64,
    pub disk_write_bytes_per_sec: f64,
}

/// An operation on a machine: its plan, where it is, and what happened.
/// Persisted with the machine, so that it resumes after a control-plane restart.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MachineOperation {
    pub id: String,
    /// `cordon`, `uncordon`, `drain`, `reboot`, `shutdown` or `decommission`.
    pub kind: String,
    /// `running`, `completed`, `failed` or `cancelled` (stopped on request
    /// before an irreversible step; the machine is back in `from_state`).
    pub phase: String,
    /// The steps in order (`cordon_node`, `drain_node`, `talos_reboot`, …).
    pub plan: Vec<String>,
    /// How many steps are done.
    pub step: u32,
    /// The state the machine was in when the operation began.
    pub from_state: MachineState,
    #[serde(default)]
    pub force: bool,
    #[serde(default)]
    pub wipe_user_disks: bool,
    #[serde(default)]
    pub drain_timeout_seconds: u32,
    #[serde(default)]
    pub delete_emptydir_data: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain: Option<DrainReport>,
    /// Why it failed, or a warning (e.g. a forced removal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
    /// A cancel was asked for (`POST …/cancel`); the replica running the
    /// operation stops it at its next check and the phase becomes `cancelled`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancel_requested: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_requested_at: Option<DateTime<Utc>>,
    /// Who asked for the cancel (shown to the owning organization only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_requested_by: Option<String>,
    pub started_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
}

/// Query of a machine's events.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct MachineEventsQuery {
    /// Return events with `seq > from` (default 0: from the start).
    #[serde(default)]
    pub from: Option<u64>,
    #[serde(default)]
    pub limit: Option<u32>,
}

/// A machine's health, evaluated live from its three sources: the link
/// (SideroLink), Talos (its services) and the Kubernetes node (Ready and
/// pressure conditions). Conditions have the shape of app conditions: one
/// health model for workloads and machines.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MachineHealth {
    pub machine: String,
    pub state: MachineState,
    /// `healthy` (every condition as it should be), `degraded` (something is
    /// off but the node runs workloads), `unhealthy` (it does not), or
    /// `unknown` (no node to judge by: not joined yet, or gone).
    pub verdict: String,
    /// `LinkUp`, `TalosReachable`, `ServicesHealthy`, `NodeReady`, and the
    /// node's `MemoryPressure`, `DiskPressure`, `PIDPressure`,
    /// `NetworkUnavailable` when it reports them.
    pub conditions: Vec<crate::apps::Condition>,
    /// Talos services with their state (empty when Talos did not answer).
    #[serde(default)]
    pub services: Vec<MachineService>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// The node is cordoned.
    #[serde(default)]
    pub unschedulable: bool,
    pub checked_at: DateTime<Utc>,
}

/// A Talos service as its machine reports it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MachineService {
    pub id: String,
    /// `Running`, `Finished`, `Waiting`, `Failed`, ….
    pub state: String,
    pub healthy: bool,
}

/// Query of an organization's machine usage (billing history).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct MachineUsageQuery {
    /// Only this machine (id or name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
    /// Only periods overlapping `[since, until)`; `seconds` counts the part
    /// inside that window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// A period during which the organization held a machine: from its claim
/// until it was released, decommissioned or removed. Kept after the machine
/// is gone.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MachineUsage {
    pub id: String,
    pub machine_id: String,
    pub machine_name: String,
    pub cpu_cores: u32,
    pub memory_bytes: u64,
    pub gpus: u32,
    pub started_at: DateTime<Utc>,
    /// Absent while the machine is still held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    /// `released`, `decommissioned` or `removed` (forced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<String>,
    /// Seconds held within the query's window (until now when open).
    pub seconds: u64,
}

/// Query of a placement preview: where would these replicas fit?
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct PlacementQuery {
    /// Machine label selector (none: every visible machine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// CPU request per replica (a quantity; default: the installation's default request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    /// Memory request per replica (a quantity; default: the installation's default request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// Replicas to place (default 1, at most 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
}

/// Which machines a selector matches and how many replicas of a request
/// each has room for, counted as the scheduler counts (allocatable minus
/// the requests of the pods already there). Anti-affinity and topology
/// spread are not applied.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlacementPreview {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    pub cpu_request: String,
    pub memory_request: String,
    pub replicas: u32,
    /// Replicas the matching machines have room for, together.
    pub fits: u32,
    /// `fits >= replicas`.
    pub enough: bool,
    pub machines: Vec<MachineRoom>,
}

/// One machine's room in a placement preview.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MachineRoom {
    pub id: String,
    pub name: String,
    pub state: MachineState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// New pods may be scheduled there now.
    pub schedulable: bool,
    /// Why not, when not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub cpu_allocatable_millis: u64,
    pub cpu_requested_millis: u64,
    pub memory_allocatable_bytes: u64,
    pub memory_requested_bytes: u64,
    pub pods_allocatable: u32,
    pub pods: u32,
    /// Replicas of the request that fit on it now.
    pub fits: u32,
}

/// Query of a machine's logs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct MachineLogsQuery {
    /// A Talos service (`machined`, `kubelet`, `containerd`, `etcd`, `apid`,
    /// …) or `kernel` for the kernel ring buffer (dmesg). Default `machined`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Start with the last this many lines (default 100, at most 10000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<u32>,
}

/// One line of a machine log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MachineLogLine {
    /// The service id, or `kernel`.
    pub source: String,
    pub line: String,
}

/// Query of a machine's metrics history.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct MachineMetricsHistoryQuery {
    /// Only samples taken within the last this many seconds (default: every
    /// sample kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_seconds: Option<u64>,
    /// Samples per page, oldest first (default 50, at most 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Cursor from the previous page's `next_cursor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// An action on every operable machine of the organization a selector matches.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    /// Label selector; required and non-empty (use `!nonexistent` style terms to be explicit).
    pub selector: String,
    /// For `labels`: the change to apply.
    #[serde(default)]
    pub labels: LabelsChange,
    /// For `drain`: the drain options.
    #[serde(default)]
    pub drain: DrainRequest,
}

/// The outcome for one machine of a bulk action.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BulkItem {
    pub id: String,
    pub name: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<MachineState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<crate::ErrorCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BulkResult {
    /// The selector as understood (canonical form).
    pub selector: String,
    pub items: Vec<BulkItem>,
}
