//! Kubernetes clusters registered with the platform (operators only).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Cluster {
    pub id: String,
    pub name: String,
    pub region: String,
    pub zone: String,
    pub default: bool,
    pub priority: i32,
    /// `unknown`, `healthy` or `unreachable`.
    pub health: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_message: Option<String>,
    /// Whether the cluster is reached with in-cluster credentials.
    pub in_cluster: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RegisterClusterRequest {
    pub name: String,
    pub region: String,
    pub zone: String,
    /// Kubeconfig YAML; stored sealed. Absent means in-cluster credentials.
    #[serde(default)]
    pub kubeconfig: Option<String>,
    #[serde(default)]
    pub default: bool,
    #[serde(default)]
    pub priority: i32,
}

/// A zone apps can be placed in.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Zone {
    pub zone: String,
    pub region: String,
    pub clusters: u32,
    /// Whether any cluster of the zone is healthy.
    pub healthy: bool,
}
