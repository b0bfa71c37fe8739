//! Apps, releases, their observed status and events.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Everything a release pins down about how an app runs. A deploy, a
/// config or secret change, a scale and a rollback each produce a new
/// immutable release holding a full copy of this.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AppSpec {
    /// Image reference, e.g. `ghcr.io/acme/web:1.2.3` or `nginx@sha256:…`.
    pub image: String,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Version of the app's secret set this release uses (0: none).
    #[serde(default)]
    pub secret_version: u64,
    #[serde(default)]
    pub resources: Resources,
    #[serde(default = "one")]
    pub replicas: u32,
    #[serde(default)]
    pub ports: Vec<Port>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthCheck>,
    #[serde(default)]
    pub strategy: Strategy,
    #[serde(default)]
    pub volumes: Vec<Volume>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<Autoscaling>,
    /// Vertical autoscaling mode; `auto` cannot be combined with `autoscaling`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vertical_autoscaling: Option<VpaMode>,
    /// Label selector over machine labels, e.g. `pool=gpu,zone in (a,b),!maintenance`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_selector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disruption_budget: Option<DisruptionBudget>,
    /// Zone to place the app in; absent means the cluster's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
}

fn one() -> u32 {
    1
}

/// The CPU a container requests when its app sets none (the namespace's
/// LimitRange default, and what placement previews assume).
pub const DEFAULT_CPU_REQUEST: &str = "100m";
/// The memory a container requests when its app sets none.
pub const DEFAULT_MEMORY_REQUEST: &str = "128Mi";

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// Kubernetes quantities, e.g. `250m`, `1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_request: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_limit: Option<String>,
    /// Kubernetes quantities, e.g. `256Mi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_request: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Port {
    pub container_port: u16,
    /// `TCP` (default) or `UDP`.
    #[serde(default = "tcp")]
    pub protocol: String,
    /// Routed publicly through the shared Gateway (HTTP ports only).
    #[serde(default)]
    pub public: bool,
}

fn tcp() -> String {
    "TCP".to_owned()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    /// HTTP path probed for readiness and liveness.
    pub path: String,
    /// Port probed; defaults to the first port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default)]
    pub initial_delay_seconds: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Strategy {
    Rolling {
        /// Integer or percentage, e.g. `1` or `25%`.
        #[serde(default = "quarter")]
        max_surge: String,
        #[serde(default = "quarter")]
        max_unavailable: String,
    },
    Recreate,
}

fn quarter() -> String {
    "25%".to_owned()
}

impl Default for Strategy {
    fn default() -> Self {
        Strategy::Rolling {
            max_surge: quarter(),
            max_unavailable: quarter(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Volume {
    /// DNS-1123 label, unique within the app.
    pub name: String,
    /// Kubernetes quantity, e.g. `1Gi`.
    pub size: String,
    /// Absolute path in the container.
    pub mount_path: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Autoscaling {
    pub min_replicas: u32,
    pub max_replicas: u32,
    /// Target average CPU utilisation, percent of the request.
    #[serde(default = "eighty")]
    pub cpu_percent: u32,
}

fn eighty() -> u32 {
    80
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum VpaMode {
    Off,
    Initial,
    Auto,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DisruptionBudget {
    /// Integer or percentage; default: one less than the replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_available: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<String>,
}

/// What made a release.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReleaseCause {
    Deploy,
    Config,
    Secret,
    Scale,
    Rollback,
    VolumeDetach,
}

impl ReleaseCause {
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseCause::Deploy => "deploy",
            ReleaseCause::Config => "config",
            ReleaseCause::Secret => "secret",
            ReleaseCause::Scale => "scale",
            ReleaseCause::Rollback => "rollback",
            ReleaseCause::VolumeDetach => "volume_detach",
        }
    }
}

impl std::str::FromStr for ReleaseCause {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "deploy" => ReleaseCause::Deploy,
            "config" => ReleaseCause::Config,
            "secret" => ReleaseCause::Secret,
            "scale" => ReleaseCause::Scale,
            "rollback" => ReleaseCause::Rollback,
            "volume_detach" => ReleaseCause::VolumeDetach,
            other => return Err(format!("unknown release cause `{other}`")),
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Release {
    pub number: u64,
    pub spec: AppSpec,
    pub cause: ReleaseCause,
    /// For a rollback: the release copied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The observed phase of an app, from what Kubernetes reports.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AppPhase {
    /// No release yet, or not reconciled yet.
    #[default]
    Pending,
    Progressing,
    Available,
    Degraded,
    Deleting,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Condition {
    /// `Ready`, `Progressing` or `Degraded`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub last_transition_time: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReplicaStatus {
    pub pod: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    pub phase: String,
    pub ready: bool,
    pub restarts: u32,
    /// Why it is not ready, e.g. `CrashLoopBackOff`, `ImagePullBackOff`, `Unschedulable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppStatus {
    pub phase: AppPhase,
    /// For `degraded`: `ImagePullBackOff`, `CrashLoopBackOff`, `Unschedulable`, `QuotaExceeded`, ….
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The desired-state generation the status describes.
    pub observed_generation: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_release: Option<u64>,
    pub desired_replicas: u32,
    pub ready_replicas: u32,
    pub updated_replicas: u32,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default)]
    pub replicas: Vec<ReplicaStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct App {
    pub id: String,
    /// DNS-1035 label, at most 63 characters, unique in the organization.
    pub name: String,
    /// Free-form metadata (`production`, `staging`, …); not a namespace.
    pub environment: String,
    pub org: String,
    /// Desired-state generation; bumps on every change the reconciler must apply.
    pub generation: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_release: Option<u64>,
    /// The generated default domain, e.g. `web-acme.apps.satusky.test`.
    pub default_domain: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    pub status: AppStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateAppRequest {
    pub name: String,
    #[serde(default)]
    pub environment: Option<String>,
}

/// A deploy: an image plus any parts of the spec to change. Fields left out
/// keep their value from the current release (or the defaults for a first
/// deploy). The optional settings `health`, `autoscaling`,
/// `vertical_autoscaling`, `machine_selector`, `disruption_budget` and `zone`
/// are removed by sending them as `null` (absent keeps them); for the other
/// fields `null` is the same as absent. Send an `Idempotency-Key` header to
/// make retries safe.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<Port>>,
    /// Readiness and liveness probes; `null` removes them.
    #[serde(
        default,
        deserialize_with = "absent_null_or_value",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<HealthCheck>, nullable))]
    pub health: Option<Option<HealthCheck>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<Vec<Volume>>,
    /// Horizontal autoscaling; `null` removes the autoscaler and goes back to
    /// fixed replicas: `replicas` if given, else the current replica count,
    /// at least the autoscaler's `min_replicas`.
    #[serde(
        default,
        deserialize_with = "absent_null_or_value",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Autoscaling>, nullable))]
    pub autoscaling: Option<Option<Autoscaling>>,
    /// Vertical autoscaling mode; `null` removes it.
    #[serde(
        default,
        deserialize_with = "absent_null_or_value",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<VpaMode>, nullable))]
    pub vertical_autoscaling: Option<Option<VpaMode>>,
    /// Label selector over machine labels; `null` (or `""`) removes it.
    #[serde(
        default,
        deserialize_with = "absent_null_or_value",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, nullable))]
    pub machine_selector: Option<Option<String>>,
    /// Disruption budget; `null` removes it, back to the default (one replica
    /// down at a time when more than one runs).
    #[serde(
        default,
        deserialize_with = "absent_null_or_value",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<DisruptionBudget>, nullable))]
    pub disruption_budget: Option<Option<DisruptionBudget>>,
    /// Zone; `null` removes the constraint (the app stays on its cluster).
    #[serde(
        default,
        deserialize_with = "absent_null_or_value",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, nullable))]
    pub zone: Option<Option<String>>,
    /// Create the app first when it does not exist.
    #[serde(default)]
    pub create: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
}

/// Deserializes a field that may be absent (`None`, with `#[serde(default)]`:
/// keep the current value), `null` (`Some(None)`: remove it) or a value
/// (`Some(Some(v))`: set it). Serializing such a field with
/// `skip_serializing_if = "Option::is_none"` writes the same three forms.
#[expect(
    clippy::option_option,
    reason = "absent, null and a value are three different requests"
)]
fn absent_null_or_value<'de, D, T>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Deployed {
    pub app: App,
    pub release: Release,
    /// True when an earlier request with the same idempotency key made this release.
    pub replayed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ScaleRequest {
    pub replicas: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// Release to go back to; default: the one before the current.
    #[serde(default)]
    pub to: Option<u64>,
}

/// Set and unset keys in one change (one release).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct KeyValueChange {
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    #[serde(default)]
    pub unset: Vec<String>,
}

/// A secret as listed: the value is masked.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecretEntry {
    pub key: String,
    /// Always `********` unless read one key at a time by an admin.
    pub value: String,
    pub version: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppEvent {
    /// Position in the app's stream, from 1; pass `from` to resume.
    pub seq: u64,
    /// `release.created`, `rollout.progress`, `rollout.complete`, `rollout.failed`, `pod.changed`, ….
    pub kind: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<u64>,
    pub at: DateTime<Utc>,
}

/// Query of `DELETE /v1/orgs/{org}/apps/{app}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct DeleteAppQuery {
    /// Also delete the app's volumes (their data is lost).
    #[serde(default)]
    pub delete_volumes: bool,
}

/// Query of the events list and stream.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Return events with `seq > from` (default 0: from the start).
    #[serde(default)]
    pub from: Option<u64>,
    #[serde(default)]
    pub limit: Option<u32>,
}

/// One line of an app's container log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogLine {
    pub pod: String,
    pub line: String,
}

/// Query of the logs endpoints.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct LogsQuery {
    /// Last lines per replica (default 100, at most 5000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<u32>,
    /// Only lines from the last this many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_seconds: Option<u64>,
    /// Only this replica (pod name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
}

/// A volume as it exists: in the release's spec, in the cluster, or both.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VolumeInfo {
    pub name: String,
    /// Requested size (from the spec, else from the claim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// Where the current release mounts it; absent when detached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_path: Option<String>,
    /// Mounted by the current release.
    pub attached: bool,
    /// The claim's phase in the cluster (`Pending`, `Bound`, …), when it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Capacity the cluster provisioned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<String>,
    /// The PersistentVolumeClaim's name.
    pub claim: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deploy_request_tells_absent_from_null_from_a_value() {
        let absent: DeployRequest = serde_json::from_str(r#"{"image":"nginx"}"#).unwrap();
        assert_eq!(absent.autoscaling, None);
        assert_eq!(absent.zone, None);
        let null: DeployRequest =
            serde_json::from_str(r#"{"image":"nginx","autoscaling":null,"zone":null}"#).unwrap();
        assert_eq!(null.autoscaling, Some(None));
        assert_eq!(null.zone, Some(None));
        let set: DeployRequest = serde_json::from_str(r#"{"image":"nginx","zone":"a"}"#).unwrap();
        assert_eq!(set.zone, Some(Some("a".to_owned())));
        // And back: absent stays absent, a removal is sent as `null`.
        let json = serde_json::to_value(&null).unwrap();
        assert!(json["autoscaling"].is_null() && json.get("autoscaling").is_some());
        assert!(json.get("health").is_none());
        assert_eq!(serde_json::to_value(&set).unwrap()["zone"], "a");
    }
}
