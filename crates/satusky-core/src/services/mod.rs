//! Services: where platform meaning lives. Each public method is one use
//! case; it validates, authorizes, talks to the store and records audit.

mod apps;
mod clusters;
mod identity;
mod machines;
mod orgs;

use std::sync::Arc;

use chrono::Duration;
use satusky_types::orgs::Outcome;

use crate::auth::Principal;
use crate::bus::{Bus, LocalBus};
use crate::clock::Clock;
use crate::crypto::SecretBox;
use crate::fleet::{NodeOps, SigningKey, TalosOps};
use crate::ratelimit::FailureLimiter;
use crate::store::{AuditRecord, OrgRecord, Store};
use crate::{Error, Result, ids};

pub use machines::{AdmitRequest, BulkAction, MachineLogFollow, SampleReport, machine_operation};
pub use orgs::OrgAccess;

/// Tunables of the services, filled from the server's configuration.
#[derive(Debug, Clone)]
pub struct ServicesConfig {
    pub signup_enabled: bool,
    pub session_ttl: Duration,
    /// Failed logins allowed per account within `login_window`.
    pub login_failures_per_account: usize,
    /// Failed logins allowed per client address within `login_window`.
    pub login_failures_per_address: usize,
    pub login_window: Duration,
    /// A token's `last_used_at` is written at most this often.
    pub token_touch_interval: Duration,
    /// Parent domain of generated app domains: `<app>-<org>.<apps_domain>`.
    pub apps_domain: String,
    /// Key sealing secrets at rest; without one, secret operations are refused.
    pub secret_box: Option<SecretBox>,
    /// Change notifications; a process-local bus by default.
    pub bus: Arc<dyn Bus>,
    /// Key signing machine join tokens; without one, join tokens and
    /// admission answer 503.
    pub join_token_key: Option<SigningKey>,
    /// The SideroLink API URL machines dial (`siderolink.api=`), without the
    /// `jointoken` parameter.
    pub siderolink_url: String,
    /// `talos.events.sink=` for joining machines: the server's overlay address.
    pub machine_events_sink: String,
    /// `talos.logging.kernel=` for joining machines.
    pub machine_kernel_log: String,
    /// Kubernetes side of machine operations; without it, operations that
    /// touch a node answer 503.
    pub node_ops: Option<Arc<dyn NodeOps>>,
    /// Talos side of machine operations; without it, reboot, shutdown,
    /// reset and metrics answer 503.
    pub talos_ops: Option<Arc<dyn TalosOps>>,
    /// How long a rebooted machine's node may take to become Ready.
    pub node_ready_timeout: std::time::Duration,
    /// How often an operation polls a node's status.
    pub machine_poll_interval: std::time::Duration,
    /// This control-plane process in leases (random per process by default):
    /// a replica runs a machine operation only while it holds the lease
    /// `machine-op/<machine id>`.
    pub replica_id: String,
    /// How long a machine-operation lease lasts unless renewed (every third
    /// of it); another replica takes a dead one's operations over after it.
    pub machine_op_lease_ttl: std::time::Duration,
    /// How long a reset machine may take to answer in maintenance mode.
    pub machine_reset_timeout: std::time::Duration,
    /// Live reads of running apps (logs); without it, logs answer 503.
    pub workload: Option<Arc<dyn crate::apps::Workload>>,
    /// Node capacity for placement previews; without it, previews answer 503.
    pub capacity: Option<Arc<dyn crate::fleet::CapacityOps>>,
    /// Machine logs through Talos; without it, machine logs answer 503.
    pub machine_logs: Option<Arc<dyn crate::fleet::MachineLogs>>,
    /// How long machine metric samples are kept (the short history).
    pub machine_sample_retention: std::time::Duration,
}

impl Default for ServicesConfig {
    fn default() -> Self {
        Self {
            signup_enabled: true,
            session_ttl: Duration::days(7),
            login_failures_per_account: 5,
            login_failures_per_address: 20,
            login_window: Duration::minutes(15),
            token_touch_interval: Duration::seconds(60),
            apps_domain: "apps.satusky.test".to_owned(),
            secret_box: None,
            bus: LocalBus::new(),
            join_token_key: None,
            siderolink_url: "https://siderolink.satusky.test:443".to_owned(),
            machine_events_sink: "[fdae:41e4:649b:9303::1]:8090".to_owned(),
            machine_kernel_log: "tcp://[fdae:41e4:649b:9303::1]:8092".to_owned(),
            node_ops: None,
            talos_ops: None,
            node_ready_timeout: std::time::Duration::from_mins(10),
            machine_poll_interval: std::time::Duration::from_secs(5),
            replica_id: format!("replica-{}", ids::new_id()),
            machine_op_lease_ttl: std::time::Duration::from_secs(30),
            machine_reset_timeout: std::time::Duration::from_mins(10),
            workload: None,
            capacity: None,
            machine_logs: None,
            machine_sample_retention: std::time::Duration::from_hours(1),
        }
    }
}

/// The per-request context of an authenticated call.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub principal: Principal,
    pub request_id: String,
}

/// Every service, sharing one store and clock.
#[derive(Debug, Clone)]
pub struct Services {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: ServicesConfig,
    account_failures: FailureLimiter,
    address_failures: FailureLimiter,
}

impl Services {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: ServicesConfig) -> Self {
        let account_failures =
            FailureLimiter::new(config.login_failures_per_account, config.login_window);
        let address_failures =
            FailureLimiter::new(config.login_failures_per_address, config.login_window);
        Self {
            inner: Arc::new(Inner {
                store,
                clock,
                config,
                account_failures,
                address_failures,
            }),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    pub fn config(&self) -> &ServicesConfig {
        &self.inner.config
    }

    /// Whether the store answers (for `/readyz`).
    pub async fn ready(&self) -> Result<()> {
        self.inner.store.ping().await.map_err(Error::internal)
    }

    /// Records one audit entry. A failure to write it is logged, not returned:
    /// the audited change has already happened.
    async fn audit(
        &self,
        ctx: &Ctx,
        org: &OrgRecord,
        action: &str,
        target: &str,
        outcome: Outcome,
    ) {
        let entry = AuditRecord {
            id: ids::new_id(),
            org_id: org.id.clone(),
            actor_id: Some(ctx.principal.user_id.clone()),
            actor_email: Some(ctx.principal.email.clone()),
            action: action.to_owned(),
            target: target.to_owned(),
            request_id: ctx.request_id.clone(),
            outcome,
            at: self.inner.clock.now(),
        };
        if let Err(e) = self.inner.store.insert_audit(&entry).await {
            tracing::error!(org.id = %org.id, action, error = &e as &dyn std::error::Error, "failed to write audit entry");
        }
    }

    /// Runs a mutation and audits it with the outcome its result implies.
    async fn audited<T>(
        &self,
        ctx: &Ctx,
        org: &OrgRecord,
        action: &str,
        target: &str,
        result: Result<T>,
    ) -> Result<T> {
        let outcome = match &result {
            Ok(_) => Outcome::Success,
            Err(e) if e.code == satusky_types::ErrorCode::Forbidden => Outcome::Denied,
            Err(_) => Outcome::Failure,
        };
        self.audit(ctx, org, action, target, outcome).await;
        result
    }
}
