//! Every Kubernetes call the reconciler makes: each with a timeout, retried
//! with a short jittered backoff on 409/429/5xx and timeouts, and — for
//! writes — only while this replica holds the leader lease.

use std::future::Future;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use tokio::sync::watch;

use crate::backoff::{base_delay, jittered};
use crate::config::ReconcilerConfig;
use crate::error::{Error, api_code, is_transient};
use crate::kinds::Kind;
use crate::render::Child;
use crate::stats::Stats;

#[derive(Clone)]
pub struct KubeIo {
    client: Client,
    cfg: Arc<ReconcilerConfig>,
    leader: watch::Receiver<bool>,
    stats: Arc<Stats>,
}

impl KubeIo {
    pub fn new(
        client: Client,
        cfg: Arc<ReconcilerConfig>,
        leader: watch::Receiver<bool>,
        stats: Arc<Stats>,
    ) -> Self {
        Self {
            client,
            cfg,
            leader,
            stats,
        }
    }

    /// Counts a deleted namespace (for metrics).
    pub fn namespace_deleted(&self) {
        self.stats.namespace_deleted();
    }

    pub fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }

    fn ensure_leader(&self) -> Result<(), Error> {
        if self.is_leader() {
            Ok(())
        } else {
            Err(Error::NotLeader)
        }
    }

    /// Runs one call with the per-call timeout, retrying transient failures.
    async fn call<T, F, Fut>(
        &self,
        op: impl Fn() -> String,
        write: bool,
        mut f: F,
        err: impl FnOnce(kube::Error) -> Error,
    ) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        let b = self.cfg.backoff;
        let mut attempt = 0u32;
        loop {
            if write {
                self.ensure_leader()?;
                self.stats.write();
            }
            attempt += 1;
            let last = attempt > b.call_retries;
            match tokio::time::timeout(self.cfg.call_timeout, f()).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) if !last && is_transient(&e) => {
                    tracing::debug!(op = %op(), code = ?api_code(&e), attempt, "retrying a Kubernetes call");
                }
                Ok(Err(e)) => return Err(err(e)),
                Err(_) if !last => {
                    tracing::debug!(op = %op(), attempt, "retrying a Kubernetes call after a timeout");
                }
                Err(_) => {
                    return Err(Error::Timeout {
                        op: op(),
                        timeout: self.cfg.call_timeout,
                    });
                }
            }
            self.stats.retry();
            tokio::time::sleep(jittered(base_delay(
                b.call_retry_delay,
                b.call_retry_delay.saturating_mul(16),
                attempt,
            )))
            .await;
        }
    }

    fn dynamic(&self, kind: Kind, namespace: &str) -> Api<DynamicObject> {
        let ar = kind.api_resource();
        if kind.namespaced() {
            Api::namespaced_with(self.client.clone(), namespace, &ar)
        } else {
            Api::all_with(self.client.clone(), &ar)
        }
    }

    /// Server-side apply under our field manager, forcing ownership.
    pub async fn apply(&self, namespace: &str, c: &Child) -> Result<DynamicObject, Error> {
        let api = self.dynamic(c.kind, namespace);
        let pp = PatchParams::apply(&self.cfg.field_manager).force();
        let patch = Patch::Apply(&c.body);
        self.call(
            || format!("apply {} {namespace}/{}", c.kind, c.name),
            true,
            || api.patch(&c.name, &pp, &patch),
            |source| Error::Apply {
                kind: c.kind.as_str(),
                namespace: namespace.to_owned(),
                name: c.name.clone(),
                source: Box::new(source),
            },
        )
        .await
    }

    pub async fn list(
        &self,
        kind: Kind,
        namespace: &str,
        selector: &str,
    ) -> Result<Vec<DynamicObject>, Error> {
        let api = self.dynamic(kind, namespace);
        let lp = ListParams::default().labels(selector);
        self.call(
            || format!("list {kind} in {namespace}"),
            false,
            || api.list(&lp),
            |source| Error::List {
                kind: kind.as_str(),
                namespace: namespace.to_owned(),
                source: Box::new(source),
            },
        )
        .await
        .map(|l| l.items)
    }

    /// Lists across every namespace (for objects of an app whose namespace
    /// is no longer known).
    pub async fn list_everywhere(
        &self,
        kind: Kind,
        selector: &str,
    ) -> Result<Vec<DynamicObject>, Error> {
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &kind.api_resource());
        let lp = ListParams::default().labels(selector);
        self.call(
            || format!("list {kind} in every namespace"),
            false,
            || api.list(&lp),
            |source| Error::List {
                kind: kind.as_str(),
                namespace: String::new(),
                source: Box::new(source),
            },
        )
        .await
        .map(|l| l.items)
    }

    /// Removes fields an apply leaves be, with a strategic merge patch of
    /// `null`s under our field manager.
    pub async fn remove_fields(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        patch: &serde_json::Value,
    ) -> Result<DynamicObject, Error> {
        let api = self.dynamic(kind, namespace);
        let pp = PatchParams {
            field_manager: Some(self.cfg.field_manager.clone()),
            ..PatchParams::default()
        };
        let patch = Patch::Strategic(patch);
        self.call(
            || format!("remove fields of {kind} {namespace}/{name}"),
            true,
            || api.patch(name, &pp, &patch),
            |source| Error::Apply {
                kind: kind.as_str(),
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                source: Box::new(source),
            },
        )
        .await
    }

    /// Deletes in the background (dependents go with it). A missing object is fine.
    pub async fn delete(&self, kind: Kind, namespace: &str, name: &str) -> Result<(), Error> {
        let api = self.dynamic(kind, namespace);
        let dp = DeleteParams::background();
        let r = self
            .call(
                || format!("delete {kind} {namespace}/{name}"),
                true,
                || api.delete(name, &dp),
                |source| Error::Delete {
                    kind: kind.as_str(),
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                    source: Box::new(source),
                },
            )
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if e.api_code() == Some(404) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub async fn get_deployment(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Deployment>, Error> {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), namespace);
        self.call(
            || format!("get Deployment {namespace}/{name}"),
            false,
            || api.get_opt(name),
            |source| Error::Get {
                kind: "Deployment",
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                source: Box::new(source),
            },
        )
        .await
    }

    pub async fn list_pods(&self, namespace: &str, selector: &str) -> Result<Vec<Pod>, Error> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let lp = ListParams::default().labels(selector);
        self.call(
            || format!("list Pod in {namespace}"),
            false,
            || api.list(&lp),
            |source| Error::List {
                kind: "Pod",
                namespace: namespace.to_owned(),
                source: Box::new(source),
            },
        )
        .await
        .map(|l| l.items)
    }

    pub async fn list_replica_sets(
        &self,
        namespace: &str,
        selector: &str,
    ) -> Result<Vec<ReplicaSet>, Error> {
        let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), namespace);
        let lp = ListParams::default().labels(selector);
        self.call(
            || format!("list ReplicaSet in {namespace}"),
            false,
            || api.list(&lp),
            |source| Error::List {
                kind: "ReplicaSet",
                namespace: namespace.to_owned(),
                source: Box::new(source),
            },
        )
        .await
        .map(|l| l.items)
    }

    /// A core/v1 Warning Event on a Deployment.
    pub async fn warn_on_deployment(
        &self,
        namespace: &str,
        name: &str,
        uid: Option<&str>,
        reason: &str,
        message: &str,
    ) -> Result<(), Error> {
        let now = chrono::Utc::now();
        let stamp = now.timestamp_nanos_opt().unwrap_or_default();
        let event = Event {
            metadata: ObjectMeta {
                name: Some(format!("{name}.{stamp:x}")),
                namespace: Some(namespace.to_owned()),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                api_version: Some("apps/v1".to_owned()),
                kind: Some("Deployment".to_owned()),
                name: Some(name.to_owned()),
                namespace: Some(namespace.to_owned()),
                uid: uid.map(str::to_owned),
                ..ObjectReference::default()
            },
            reason: Some(reason.to_owned()),
            message: Some(message.chars().take(1024).collect()),
            type_: Some("Warning".to_owned()),
            count: Some(1),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            reporting_component: Some(self.cfg.event_component.clone()),
            reporting_instance: Some(self.cfg.lease.holder_identity.clone()),
            source: Some(k8s_openapi::api::core::v1::EventSource {
                component: Some(self.cfg.event_component.clone()),
                host: None,
            }),
            ..Event::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        let pp = PostParams::default();
        self.call(
            || format!("create Event on Deployment {namespace}/{name}"),
            true,
            || api.create(&pp, &event),
            |source| Error::Event {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                source: Box::new(source),
            },
        )
        .await
        .map(|_| ())
    }
}
