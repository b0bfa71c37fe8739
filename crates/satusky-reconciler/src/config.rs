//! Tunables of the reconciler, filled by `satusky serve` / `dev` from the
//! server's configuration.

use std::time::Duration;

/// Resource limits of an organization's namespace, from its plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanQuota {
    /// Total CPU requests and limits in the namespace (a Kubernetes quantity).
    pub cpu: String,
    /// Total memory requests and limits (a Kubernetes quantity).
    pub memory: String,
    /// Pods at most.
    pub pods: u32,
    /// Container default request when a spec sets none (LimitRange).
    pub default_cpu_request: String,
    pub default_memory_request: String,
    /// Container default limit when a spec sets none (LimitRange).
    pub default_cpu_limit: String,
    pub default_memory_limit: String,
}

impl Default for PlanQuota {
    /// The default tier: 2 CPU, 4Gi memory, 10 pods.
    fn default() -> Self {
        Self {
            cpu: "2".to_owned(),
            memory: "4Gi".to_owned(),
            pods: 10,
            default_cpu_request: satusky_types::apps::DEFAULT_CPU_REQUEST.to_owned(),
            default_memory_request: satusky_types::apps::DEFAULT_MEMORY_REQUEST.to_owned(),
            default_cpu_limit: "500m".to_owned(),
            default_memory_limit: "512Mi".to_owned(),
        }
    }
}

/// The leader Lease (`coordination.k8s.io/v1`).
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub name: String,
    pub namespace: String,
    /// This replica's identity; unique per process.
    pub holder_identity: String,
    /// How long a lease stays valid without renewal; another replica takes
    /// over after it.
    pub duration: Duration,
    /// How often the holder renews (well below `duration`).
    pub renew_interval: Duration,
    /// How often a follower tries to acquire.
    pub retry_interval: Duration,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        Self {
            name: "satusky-reconciler".to_owned(),
            namespace: "satusky-system".to_owned(),
            // Unique even where every replica is PID 1; `satusky serve`
            // should pass the pod name.
            holder_identity: format!(
                "satusky-{}-{:08x}",
                std::process::id(),
                rand::random::<u32>()
            ),
            duration: Duration::from_secs(15),
            renew_interval: Duration::from_secs(5),
            retry_interval: Duration::from_secs(2),
        }
    }
}

/// Per-app exponential backoff after errors.
#[derive(Debug, Clone, Copy)]
pub struct BackoffConfig {
    /// Delay after the first failure.
    pub initial: Duration,
    /// Cap on the delay.
    pub max: Duration,
    /// Retries of one Kubernetes call on 409/429/5xx before the pass fails.
    pub call_retries: u32,
    /// First delay between those retries (doubles, jittered).
    pub call_retry_delay: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(500),
            max: Duration::from_mins(5),
            call_retries: 4,
            call_retry_delay: Duration::from_millis(100),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ReconcilerConfig {
    /// Server-side apply field manager.
    pub field_manager: String,
    /// Every app is looked at again at least this often.
    pub resync_period: Duration,
    /// Look again this soon while a rollout progresses.
    pub progress_requeue: Duration,
    /// Look again this soon while an app is degraded.
    pub degraded_requeue: Duration,
    /// How long a pod may stay unschedulable before the app is `Degraded`
    /// (until then it is progressing, the wait said in its message): room
    /// often comes soon, from a node autoscaler or a machine joining.
    pub unschedulable_grace: Duration,
    pub backoff: BackoffConfig,
    /// Deadline of every single Kubernetes API call.
    pub call_timeout: Duration,
    /// Apps reconciled at once.
    pub concurrency: usize,
    /// The shared Gateway HTTPRoutes attach to, and its namespace (admitted
    /// by every org's NetworkPolicy).
    pub gateway_name: String,
    pub gateway_namespace: String,
    pub lease: LeaseConfig,
    /// Quota of every organization namespace (the default tier).
    pub quota: PlanQuota,
    /// Name reported as the source of Kubernetes Events.
    pub event_component: String,
}

impl Default for ReconcilerConfig {
    fn default() -> Self {
        Self {
            field_manager: "satusky".to_owned(),
            resync_period: Duration::from_mins(5),
            progress_requeue: Duration::from_secs(2),
            degraded_requeue: Duration::from_secs(15),
            unschedulable_grace: Duration::from_mins(2),
            backoff: BackoffConfig::default(),
            call_timeout: Duration::from_secs(10),
            concurrency: 4,
            gateway_name: "satusky-gateway".to_owned(),
            gateway_namespace: "satusky-system".to_owned(),
            lease: LeaseConfig::default(),
            quota: PlanQuota::default(),
            event_component: "satusky-reconciler".to_owned(),
        }
    }
}
