//! The leader lock: a `coordination.k8s.io/v1` Lease. One replica holds it
//! and renews it; the others try at intervals and take over once it has
//! expired. Every write of the reconciler is gated on holding it; the holder
//! steps down by itself when it could not renew in time, before another
//! replica may consider the lease expired.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::watch;

use crate::config::LeaseConfig;
use crate::error::Error;
use crate::stats::Stats;

pub struct LeaseLock {
    api: Api<Lease>,
    namespaces: Api<Namespace>,
    cfg: LeaseConfig,
    call_timeout: Duration,
    /// The other holder's record as last seen, and when (by our clock): a
    /// lease is expired once it has not changed for its duration, so clock
    /// skew between replicas does not matter (as client-go does it).
    observed: Option<(String, Instant)>,
}

impl LeaseLock {
    pub fn new(client: Client, cfg: LeaseConfig, call_timeout: Duration) -> Self {
        Self {
            api: Api::namespaced(client.clone(), &cfg.namespace),
            namespaces: Api::all(client),
            cfg,
            call_timeout,
            observed: None,
        }
    }

    fn err(&self, source: kube::Error) -> Error {
        Error::Lease {
            namespace: self.cfg.namespace.clone(),
            name: self.cfg.name.clone(),
            source: Box::new(source),
        }
    }

    async fn timed<T>(&self, f: impl Future<Output = Result<T, kube::Error>>) -> Result<T, Error> {
        match tokio::time::timeout(self.call_timeout, f).await {
            Ok(r) => r.map_err(|e| self.err(e)),
            Err(_) => Err(Error::Timeout {
                op: format!("lease {}/{}", self.cfg.namespace, self.cfg.name),
                timeout: self.call_timeout,
            }),
        }
    }

    fn duration_secs(&self) -> i32 {
        self.cfg.duration.as_secs().max(1) as i32
    }

    /// Creates the lease's namespace when it is missing (an installer
    /// normally has; this keeps a fresh cluster working).
    async fn ensure_namespace(&self) -> Result<(), Error> {
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(self.cfg.namespace.clone()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        match self
            .timed(self.namespaces.create(&PostParams::default(), &ns))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.api_code() == Some(409) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// One attempt to acquire or renew. `Ok(true)`: we hold the lease now.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool, Error> {
        let now = Utc::now();
        let me = self.cfg.holder_identity.as_str();
        let existing = self.timed(self.api.get_opt(&self.cfg.name)).await?;
        let Some(mut lease) = existing else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.cfg.name.clone()),
                    namespace: Some(self.cfg.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(me.to_owned()),
                    lease_duration_seconds: Some(self.duration_secs()),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self
                .timed(self.api.create(&PostParams::default(), &lease))
                .await
            {
                Ok(_) => Ok(true),
                Err(e) if e.api_code() == Some(409) => Ok(false),
                Err(e) if e.api_code() == Some(404) => {
                    self.ensure_namespace().await?;
                    Ok(false)
                }
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let holder = spec.holder_identity.clone().unwrap_or_default();
        if holder != me {
            let dur = Duration::from_secs(
                u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0),
            );
            let record = format!(
                "{holder}@{}",
                spec.renew_time
                    .as_ref()
                    .map(|t| t.0.to_rfc3339())
                    .unwrap_or_default()
            );
            let seen_at = match &self.observed {
                Some((r, at)) if *r == record => *at,
                _ => {
                    let at = Instant::now();
                    self.observed = Some((record, at));
                    at
                }
            };
            if !holder.is_empty() && seen_at.elapsed() <= dur {
                return Ok(false);
            }
            spec.holder_identity = Some(me.to_owned());
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.renew_time = Some(MicroTime(now));
        spec.lease_duration_seconds = Some(self.duration_secs());
        // The resourceVersion we read makes this a compare-and-swap.
        match self
            .timed(
                self.api
                    .replace(&self.cfg.name, &PostParams::default(), &lease),
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.api_code() == Some(409) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the lease up so another replica takes over at once.
    pub async fn release(&self) -> Result<(), Error> {
        let Some(mut lease) = self.timed(self.api.get_opt(&self.cfg.name)).await? else {
            return Ok(());
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.cfg.holder_identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Utc::now()));
        self.timed(
            self.api
                .replace(&self.cfg.name, &PostParams::default(), &lease),
        )
        .await
        .map(|_| ())
    }

    /// Acquires, renews and finally releases the lease, publishing whether
    /// we hold it. Ends when `stop` turns true.
    pub async fn run(
        mut self,
        leader: watch::Sender<bool>,
        mut stop: watch::Receiver<bool>,
        stats: Arc<Stats>,
    ) {
        let lease = format!("{}/{}", self.cfg.namespace, self.cfg.name);
        // Step down well before others may see the lease as expired.
        let deadline = self.cfg.duration.mul_f64(2.0 / 3.0);
        let mut last_renew: Option<Instant> = None;
        loop {
            if *stop.borrow() {
                break;
            }
            let was = *leader.borrow();
            match self.try_acquire_or_renew().await {
                Ok(true) => {
                    last_renew = Some(Instant::now());
                    if !was {
                        stats.acquired();
                        tracing::info!(k8s.lease = %lease, holder = %self.cfg.holder_identity, "acquired the leader lease");
                        leader.send_replace(true);
                        stats.set_leader(true);
                    }
                }
                Ok(false) => {
                    if was {
                        tracing::warn!(k8s.lease = %lease, "lost the leader lease");
                    }
                    leader.send_replace(false);
                    stats.set_leader(false);
                    last_renew = None;
                }
                Err(e) => {
                    let stale = last_renew.is_none_or(|t| t.elapsed() > deadline);
                    tracing::warn!(k8s.lease = %lease, error = &e as &dyn std::error::Error, "lease call failed");
                    if was && stale {
                        tracing::warn!(k8s.lease = %lease, "could not renew the leader lease in time; stepping down");
                        leader.send_replace(false);
                        stats.set_leader(false);
                    }
                }
            }
            let wait = if *leader.borrow() {
                self.cfg.renew_interval
            } else {
                self.cfg.retry_interval
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = stop.changed() => {}
            }
        }
        stats.set_leader(false);
        if leader.send_replace(false)
            && let Err(e) = self.release().await
        {
            tracing::warn!(k8s.lease = %lease, error = &e as &dyn std::error::Error, "failed to release the leader lease");
        }
    }
}
