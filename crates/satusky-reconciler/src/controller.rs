//! The loop: which app to look at when, and one level-triggered pass per app.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use futures::{Stream, StreamExt as _};
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, DynamicObject};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher;
use satusky_core::Services;
use satusky_core::apps::DesiredApp;
use satusky_core::bus::Notice;
use satusky_core::pagination::PageRequest;
use satusky_types::apps::{AppPhase, AppStatus, ReplicaStatus};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument as _;

use crate::backoff::Backoff;
use crate::config::ReconcilerConfig;
use crate::error::Error;
use crate::kinds::Kind;
use crate::kube_io::KubeIo;
use crate::labels;
use crate::lease::LeaseLock;
use crate::render::{self, render};
use crate::source::AppSource;
use crate::stats::Stats;
use crate::status::{self, Observed};

/// Applies every app's desired state to Kubernetes and reports what runs.
///
/// Wire it into a server with [`Reconciler::new`] and spawn
/// [`Reconciler::run`] with the server's shutdown signal.
pub struct Reconciler {
    source: Arc<dyn AppSource>,
    client: Client,
    cfg: Arc<ReconcilerConfig>,
    stats: Arc<Stats>,
}

/// What a pass asks for: when to look again (besides notices and watches).
type PassResult = Result<Option<Duration>, Error>;

/// What one pass works on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Job {
    /// One app.
    App(String),
    /// The namespaces of one organization, told deleted.
    Org(String),
    /// Every namespace we made, for organizations deleted unnoticed.
    Namespaces,
}

impl Job {
    /// Its key in the backoff (app ids are UUIDs; the others cannot clash).
    fn key(&self) -> String {
        match self {
            Job::App(id) => id.clone(),
            Job::Org(id) => format!("org/{id}"),
            Job::Namespaces => "namespaces".to_owned(),
        }
    }

    fn span(&self) -> tracing::Span {
        match self {
            Job::App(id) => tracing::info_span!("reconcile", app.id = %id),
            Job::Org(id) => tracing::info_span!("org_namespaces", org.id = %id),
            Job::Namespaces => tracing::info_span!("namespace_sweep"),
        }
    }
}

impl std::fmt::Display for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Job::App(id) => write!(f, "app {id}"),
            Job::Org(id) => write!(f, "the namespaces of organization {id}"),
            Job::Namespaces => f.write_str("the namespace sweep"),
        }
    }
}

impl Reconciler {
    pub fn new(services: Services, client: Client, config: ReconcilerConfig) -> Self {
        Self::with_source(Arc::new(services), client, config)
    }

    /// A reconciler fed by any [`AppSource`].
    pub fn with_source(
        source: Arc<dyn AppSource>,
        client: Client,
        config: ReconcilerConfig,
    ) -> Self {
        Self {
            source,
            client,
            cfg: Arc::new(config),
            stats: Arc::new(Stats::default()),
        }
    }

    /// Counters of this reconciler (shared; keep the `Arc` to read them
    /// while it runs).
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Runs until `shutdown` completes: holds the lease when it can and,
    /// while it does, reconciles apps on notices, watch events, requeues and
    /// the periodic resync. On shutdown, finishes the passes under way and
    /// releases the lease.
    #[tracing::instrument(skip_all, fields(holder = %self.cfg.lease.holder_identity))]
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let cfg = self.cfg.clone();
        let (leader_tx, mut leader_rx) = watch::channel(false);
        let (stop_tx, stop_rx) = watch::channel(false);
        let lease = LeaseLock::new(self.client.clone(), cfg.lease.clone(), cfg.call_timeout);
        let lease_task = tokio::spawn(lease.run(leader_tx, stop_rx, self.stats.clone()));
        let worker = Arc::new(Worker {
            source: self.source.clone(),
            kube: KubeIo::new(
                self.client.clone(),
                cfg.clone(),
                leader_rx.clone(),
                self.stats.clone(),
            ),
            cfg: cfg.clone(),
            memory: Mutex::new(HashMap::new()),
            orgs: Mutex::new(HashMap::new()),
            absent: Mutex::new(HashSet::new()),
        });
        let mut bus = Some(self.source.subscribe());
        let (trigger_tx, mut triggers) = mpsc::channel::<Trigger>(1024);
        let watches = spawn_watches(&self.client, &trigger_tx);
        // Dropping `run` (an aborted task) must not leave the lease renewed
        // or watches running.
        let _guard = AbortOnDrop(
            watches
                .iter()
                .map(tokio::task::JoinHandle::abort_handle)
                .chain([lease_task.abort_handle()])
                .collect(),
        );
        let mut resync = tokio::time::interval(cfg.resync_period);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut queue = Queue::default();
        let mut backoff = Backoff::new(cfg.backoff);
        let mut tasks: JoinSet<PassResult> = JoinSet::new();
        let mut running: HashMap<tokio::task::Id, Job> = HashMap::new();
        tokio::pin!(shutdown);
        loop {
            let leader = *leader_rx.borrow();
            if leader {
                let busy: HashSet<Job> = running.values().cloned().collect();
                let room = cfg.concurrency.max(1).saturating_sub(running.len());
                for job in queue.pop_ready(Instant::now(), &busy, room) {
                    let w = worker.clone();
                    let span = job.span();
                    let j = job.clone();
                    let handle = tasks.spawn(
                        async move {
                            match &j {
                                Job::App(id) => w.reconcile(id).await,
                                Job::Org(id) => w.sweep_namespaces(Some(id)).await,
                                Job::Namespaces => w.sweep_namespaces(None).await,
                            }
                        }
                        .instrument(span),
                    );
                    running.insert(handle.id(), job);
                }
            }
            let busy: HashSet<Job> = running.values().cloned().collect();
            // Full or not leading: wait for a pass to end or for the lease,
            // not for a due time that could not be acted on.
            let next = if leader && running.len() < cfg.concurrency.max(1) {
                queue.next_due(&busy)
            } else {
                None
            };
            tokio::select! {
                () = &mut shutdown => break,
                changed = leader_rx.changed() => {
                    if changed.is_err() {
                        tracing::error!("the lease task ended; stopping the reconciler");
                        break;
                    }
                    if *leader_rx.borrow() {
                        self.resync(&mut queue).await;
                    }
                }
                notice = recv(bus.as_mut()) => match notice {
                    Ok(Notice::AppChanged { app_id }) => queue.push(Job::App(app_id), Instant::now()),
                    Ok(Notice::OrgDeleted { org_id }) => {
                        // Its namespaces go; the passes of its apps forget them.
                        let now = Instant::now();
                        for id in worker.apps_of(&org_id) {
                            queue.push(Job::App(id), now);
                        }
                        queue.push(Job::Org(org_id), now);
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "change notices were dropped; resyncing");
                        self.resync(&mut queue).await;
                    }
                    Err(broadcast::error::RecvError::Closed) => bus = None,
                },
                Some(t) = triggers.recv() => match t {
                    Trigger::App(id) => {
                        worker.seen_in_cluster(&id);
                        queue.push(Job::App(id), Instant::now());
                    }
                    Trigger::Org(org) => {
                        for id in worker.apps_of(&org) {
                            queue.push(Job::App(id), Instant::now());
                        }
                    }
                },
                _ = resync.tick() => {
                    if leader {
                        self.resync(&mut queue).await;
                    }
                }
                Some(joined) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                    let (task, outcome) = match joined {
                        Ok((task, r)) => (task, Some(r)),
                        Err(e) => (e.id(), None),
                    };
                    if let Some(job) = running.remove(&task) {
                        self.stats.pass();
                        let outcome = outcome.unwrap_or_else(|| Err(Error::Panicked { job: job.to_string() }));
                        self.settle(&mut queue, &mut backoff, job, outcome);
                    }
                }
                () = sleep_until(next) => {}
            }
        }
        // Shutdown: no new passes; let the running ones finish, then give up the lease.
        let grace = cfg.call_timeout.saturating_mul(2);
        let _ = tokio::time::timeout(grace, async {
            while tasks.join_next().await.is_some() {
                self.stats.pass();
            }
        })
        .await;
        tasks.abort_all();
        for w in watches {
            w.abort();
        }
        let _ = stop_tx.send(true);
        let _ = lease_task.await;
        tracing::info!("reconciler stopped");
    }

    fn settle(&self, queue: &mut Queue<Job>, backoff: &mut Backoff, job: Job, outcome: PassResult) {
        let now = Instant::now();
        match outcome {
            Ok(requeue) => {
                backoff.succeeded(&job.key());
                if let Some(after) = requeue {
                    queue.push(job, now + after);
                }
            }
            Err(Error::NotLeader) => queue.push(job, now),
            Err(e) => {
                self.stats.error(e.category());
                let delay = backoff.failed(&job.key());
                let retry_in_ms = delay.as_millis() as u64;
                let error = &e as &dyn std::error::Error;
                match &job {
                    Job::App(id) => tracing::warn!(
                        app.id = %id,
                        category = e.category(),
                        retry_in_ms,
                        error,
                        "reconcile failed"
                    ),
                    Job::Org(id) => tracing::warn!(
                        org.id = %id,
                        category = e.category(),
                        retry_in_ms,
                        error,
                        "deleting the namespaces of a deleted organization failed"
                    ),
                    Job::Namespaces => tracing::warn!(
                        category = e.category(),
                        retry_in_ms,
                        error,
                        "the namespace sweep failed"
                    ),
                }
                queue.push(job, now + delay);
            }
        }
    }

    /// Queues every app, and a sweep of the namespaces of deleted
    /// organizations.
    async fn resync(&self, queue: &mut Queue<Job>) {
        queue.push(Job::Namespaces, Instant::now());
        let mut page = PageRequest::first(500);
        loop {
            let listed =
                tokio::time::timeout(self.cfg.call_timeout, self.source.app_ids(&page)).await;
            let ids = match listed {
                Ok(Ok(p)) => p,
                Ok(Err(source)) => {
                    let e = Error::ListApps(source);
                    self.stats.error(e.category());
                    tracing::warn!(error = &e as &dyn std::error::Error, "resync failed");
                    return;
                }
                Err(_) => {
                    let e = Error::Timeout {
                        op: "listing app ids for the resync".to_owned(),
                        timeout: self.cfg.call_timeout,
                    };
                    self.stats.error(e.category());
                    tracing::warn!(error = &e as &dyn std::error::Error, "resync failed");
                    return;
                }
            };
            let now = Instant::now();
            for id in ids.items {
                queue.push(Job::App(id), now);
            }
            match ids.next_cursor {
                Some(c) => match PageRequest::parse(Some(500), Some(&c)) {
                    Ok(p) => page = p,
                    Err(_) => return,
                },
                None => return,
            }
        }
    }
}

struct AbortOnDrop(Vec<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

async fn recv(
    bus: Option<&mut broadcast::Receiver<Notice>>,
) -> Result<Notice, broadcast::error::RecvError> {
    match bus {
        Some(b) => b.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Jobs (apps, mostly) due for a pass, each at most once.
#[derive(Debug)]
struct Queue<K> {
    due: HashMap<K, Instant>,
}

impl<K> Default for Queue<K> {
    fn default() -> Self {
        Self {
            due: HashMap::new(),
        }
    }
}

impl<K: Clone + Eq + std::hash::Hash + Ord> Queue<K> {
    /// Asks for a pass at `at`, or sooner if one was already asked.
    fn push(&mut self, id: K, at: Instant) {
        let e = self.due.entry(id).or_insert(at);
        if at < *e {
            *e = at;
        }
    }

    fn next_due(&self, busy: &HashSet<K>) -> Option<Instant> {
        self.due
            .iter()
            .filter(|(id, _)| !busy.contains(*id))
            .map(|(_, at)| *at)
            .min()
    }

    fn pop_ready(&mut self, now: Instant, busy: &HashSet<K>, limit: usize) -> Vec<K> {
        let mut ready: Vec<(Instant, K)> = self
            .due
            .iter()
            .filter(|(id, at)| **at <= now && !busy.contains(*id))
            .map(|(id, at)| (*at, id.clone()))
            .collect();
        ready.sort();
        ready.truncate(limit);
        for (_, id) in &ready {
            self.due.remove(id);
        }
        ready.into_iter().map(|(_, id)| id).collect()
    }
}

/// A change seen by a watch: an app's object, or an organization's.
#[derive(Debug)]
enum Trigger {
    App(String),
    Org(String),
}

/// Watches everything we manage (and the pods of our apps); every change
/// queues the app it belongs to — or, for an organization's namespace,
/// quota, limit range and network policy, the org's apps. This is how drift
/// gets repaired.
fn spawn_watches(client: &Client, tx: &mpsc::Sender<Trigger>) -> Vec<tokio::task::JoinHandle<()>> {
    let wc = watcher::Config::default().labels(&labels::managed_selector());
    let org_kinds = [
        Kind::Namespace,
        Kind::ResourceQuota,
        Kind::LimitRange,
        Kind::NetworkPolicy,
    ];
    let mut tasks = Vec::new();
    for kind in Kind::APP_OWNED.into_iter().chain(org_kinds) {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &kind.api_resource());
        let stream = watcher(api, wc.clone()).default_backoff().touched_objects();
        tasks.push(tokio::spawn(forward(stream, tx.clone(), kind.as_str())));
    }
    let pods: Api<Pod> = Api::all(client.clone());
    let stream = watcher(pods, wc).default_backoff().touched_objects();
    tasks.push(tokio::spawn(forward(stream, tx.clone(), "Pod")));
    tasks
}

async fn forward<K: kube::Resource>(
    stream: impl Stream<Item = Result<K, watcher::Error>>,
    tx: mpsc::Sender<Trigger>,
    kind: &'static str,
) {
    let mut stream = std::pin::pin!(stream);
    while let Some(item) = stream.next().await {
        match item {
            Ok(obj) => {
                let labels = obj.meta().labels.as_ref();
                let trigger = match (
                    labels.and_then(|l| l.get(labels::APP_ID)),
                    labels.and_then(|l| l.get(labels::ORG_ID)),
                ) {
                    (Some(app), _) => Trigger::App(app.clone()),
                    (None, Some(org)) => Trigger::Org(org.clone()),
                    (None, None) => continue,
                };
                if tx.send(trigger).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::debug!(
                    k8s.kind = kind,
                    error = &e as &dyn std::error::Error,
                    "watch interrupted; retrying"
                );
            }
        }
    }
}

/// What the reconciler remembers of an app between passes (in memory only:
/// a restart re-derives it, at worst repeating an event).
#[derive(Debug, Default)]
struct Memory {
    observed_generation: u64,
    degraded: Option<String>,
    pods: BTreeMap<String, ReplicaStatus>,
}

struct Worker {
    source: Arc<dyn AppSource>,
    kube: KubeIo,
    cfg: Arc<ReconcilerConfig>,
    memory: Mutex<HashMap<String, Memory>>,
    /// Organization id → its apps seen so far, to repair org-wide objects.
    orgs: Mutex<HashMap<String, BTreeSet<String>>>,
    /// Apps the source does not have and of which this cluster was found
    /// empty: not listed again until a watch shows one of their objects.
    absent: Mutex<HashSet<String>>,
}

impl Worker {
    /// A watch saw an object of this app.
    fn seen_in_cluster(&self, app_id: &str) {
        if let Ok(mut a) = self.absent.lock() {
            a.remove(app_id);
        }
    }

    fn apps_of(&self, org_id: &str) -> Vec<String> {
        self.orgs
            .lock()
            .ok()
            .and_then(|o| o.get(org_id).map(|a| a.iter().cloned().collect()))
            .unwrap_or_default()
    }

    /// A call to the app source (the store), with the per-call timeout.
    async fn source_call<T>(
        &self,
        op: &str,
        app_id: &str,
        fut: impl Future<Output = satusky_core::Result<T>>,
        err: impl FnOnce(satusky_core::Error) -> Error,
    ) -> Result<T, Error> {
        match tokio::time::timeout(self.cfg.call_timeout, fut).await {
            Ok(r) => r.map_err(err),
            Err(_) => Err(Error::Timeout {
                op: format!("{op} of app {app_id}"),
                timeout: self.cfg.call_timeout,
            }),
        }
    }

    async fn reconcile(&self, app_id: &str) -> PassResult {
        if !self.kube.is_leader() {
            return Err(Error::NotLeader);
        }
        let desired = self
            .source_call(
                "reading the desired state",
                app_id,
                self.source.desired_app(app_id),
                |source| Error::ReadDesired {
                    app_id: app_id.to_owned(),
                    source,
                },
            )
            .await?;
        let Some(d) = desired else {
            self.forget(app_id);
            return self.remove_strays(app_id).await;
        };
        self.seen_in_cluster(app_id);
        if let Ok(mut o) = self.orgs.lock() {
            o.entry(d.org_id.clone())
                .or_default()
                .insert(d.app_id.clone());
        }
        if d.deleting {
            return self.delete(&d).await;
        }
        if d.release == 0 {
            // Created but never deployed: nothing to run yet.
            return Ok(None);
        }
        self.apply(&d).await
    }

    fn forget(&self, app_id: &str) {
        if let Ok(mut m) = self.memory.lock() {
            m.remove(app_id);
        }
        if let Ok(mut o) = self.orgs.lock() {
            for apps in o.values_mut() {
                apps.remove(app_id);
            }
            o.retain(|_, apps| !apps.is_empty());
        }
    }

    async fn apply(&self, d: &DesiredApp) -> PassResult {
        let ns = d.namespace.as_str();
        let rendered = render(d, &self.cfg)?;
        for c in &rendered.org {
            self.kube.apply(ns, c).await?;
        }
        let mut deployment_uid = None;
        for c in &rendered.app {
            let mut obj = self.kube.apply(ns, c).await?;
            if c.kind == Kind::Deployment {
                if let Some(patch) = render::deployment_leftovers(&c.body, &obj.data) {
                    obj = self.kube.remove_fields(c.kind, ns, &c.name, &patch).await?;
                    tracing::info!(k8s.namespace = ns, k8s.kind = %c.kind, k8s.name = %c.name, "removed probes or node affinity the release no longer has");
                }
                deployment_uid = obj.metadata.uid;
            }
        }
        // Orphans: labelled children this pass did not apply. Volumes stay
        // until the app is deleted with its volumes.
        let applied: HashSet<(Kind, &str)> = rendered
            .app
            .iter()
            .map(|c| (c.kind, c.name.as_str()))
            .collect();
        let selector = labels::app_selector(&d.app_id);
        for kind in Kind::APP_OWNED {
            if kind == Kind::PersistentVolumeClaim {
                continue;
            }
            for obj in self.kube.list(kind, ns, &selector).await? {
                let name = obj.metadata.name.clone().unwrap_or_default();
                if applied.contains(&(kind, name.as_str()))
                    || obj.metadata.deletion_timestamp.is_some()
                {
                    continue;
                }
                self.kube.delete(kind, ns, &name).await?;
                tracing::info!(k8s.namespace = ns, k8s.kind = %kind, k8s.name = %name, "deleted an object the app no longer needs");
            }
        }
        let status = self.observe(d, deployment_uid.as_deref()).await?;
        Ok(match status.phase {
            AppPhase::Available => None,
            AppPhase::Degraded => Some(self.cfg.degraded_requeue),
            _ => Some(self.cfg.progress_requeue),
        })
    }

    /// The first time this process sees an app, starts from the status
    /// recorded before (by an earlier leader, say): no observed generation
    /// going back to 0, no repeated events.
    async fn seed_memory(&self, d: &DesiredApp) {
        let known = self.memory.lock().is_ok_and(|m| m.contains_key(&d.app_id));
        if known {
            return;
        }
        let read = tokio::time::timeout(
            self.cfg.call_timeout,
            self.source.recorded_status(&d.app_id),
        );
        let recorded = match read
            .await
            .unwrap_or_else(|_| Err(satusky_core::Error::internal("timed out")))
        {
            Ok(s) => s.unwrap_or_default(),
            Err(e) => {
                tracing::debug!(app.id = %d.app_id, error = &e as &dyn std::error::Error, "no recorded status to start from");
                AppStatus::default()
            }
        };
        if let Ok(mut m) = self.memory.lock() {
            m.entry(d.app_id.clone()).or_insert_with(|| Memory {
                observed_generation: recorded.observed_generation,
                degraded: (recorded.phase == AppPhase::Degraded)
                    .then_some(recorded.reason)
                    .flatten(),
                pods: recorded
                    .replicas
                    .into_iter()
                    .map(|r| (r.pod.clone(), r))
                    .collect(),
            });
        }
    }

    /// Reads what runs, records the status, tells the user what changed.
    async fn observe(
        &self,
        d: &DesiredApp,
        deployment_uid: Option<&str>,
    ) -> Result<AppStatus, Error> {
        let ns = d.namespace.as_str();
        let selector = labels::app_selector(&d.app_id);
        let deployment = self.kube.get_deployment(ns, &d.app_name).await?;
        let replica_sets = self.kube.list_replica_sets(ns, &selector).await?;
        let pods = self.kube.list_pods(ns, &selector).await?;
        self.seed_memory(d).await;
        let (last_generation, last_degraded, last_pods) = {
            let m = self.memory.lock().ok();
            let e = m.as_ref().and_then(|m| m.get(&d.app_id));
            (
                e.map_or(0, |e| e.observed_generation),
                e.and_then(|e| e.degraded.clone()),
                e.map(|e| e.pods.clone()).unwrap_or_default(),
            )
        };
        let status = status::derive(
            d,
            &Observed {
                deployment: deployment.as_ref(),
                replica_sets: &replica_sets,
                pods: &pods,
            },
            last_generation,
            Utc::now(),
            chrono::Duration::from_std(self.cfg.unschedulable_grace)
                .unwrap_or(chrono::Duration::MAX),
        );
        for msg in status::pod_changes(&last_pods, &status.replicas)
            .into_iter()
            .take(10)
        {
            let recorded = tokio::time::timeout(
                self.cfg.call_timeout,
                self.source
                    .record_event(&d.app_id, "pod.changed", msg, Some(d.release)),
            )
            .await;
            if recorded.is_err() {
                tracing::warn!(app.id = %d.app_id, "recording a pod event timed out");
            }
        }
        let degraded = (status.phase == AppPhase::Degraded)
            .then(|| status.reason.clone())
            .flatten();
        if let Some(reason) = &degraded
            && last_degraded.as_ref() != Some(reason)
        {
            let uid =
                deployment_uid.or(deployment.as_ref().and_then(|d| d.metadata.uid.as_deref()));
            let message = status.message.clone().unwrap_or_default();
            match self
                .kube
                .warn_on_deployment(ns, &d.app_name, uid, reason, &message)
                .await
            {
                Ok(()) => {}
                Err(Error::NotLeader) => return Err(Error::NotLeader),
                Err(e) => {
                    tracing::warn!(app.id = %d.app_id, error = &e as &dyn std::error::Error, "failed to record a Kubernetes event");
                }
            }
        }
        self.source_call(
            "recording the status",
            &d.app_id,
            self.source.record_status(&d.app_id, status.clone()),
            |source| Error::RecordStatus {
                app_id: d.app_id.clone(),
                source,
            },
        )
        .await?;
        if let Ok(mut m) = self.memory.lock() {
            let e = m.entry(d.app_id.clone()).or_default();
            e.observed_generation = status.observed_generation;
            e.degraded = degraded;
            e.pods = status
                .replicas
                .iter()
                .map(|r| (r.pod.clone(), r.clone()))
                .collect();
        }
        Ok(status)
    }

    /// The source no longer has the app (its record is gone, or it is placed
    /// on another cluster): whatever of it is still here goes, except its
    /// volumes, whose data only an explicit deletion may lose.
    async fn remove_strays(&self, app_id: &str) -> PassResult {
        if self.absent.lock().is_ok_and(|a| a.contains(app_id)) {
            return Ok(None);
        }
        let selector = labels::app_selector(app_id);
        let mut found = false;
        for kind in Kind::APP_OWNED {
            if kind == Kind::PersistentVolumeClaim {
                continue;
            }
            for obj in self.kube.list_everywhere(kind, &selector).await? {
                found = true;
                if obj.metadata.deletion_timestamp.is_some() {
                    continue;
                }
                let ns = obj.metadata.namespace.clone().unwrap_or_default();
                let name = obj.metadata.name.clone().unwrap_or_default();
                self.kube.delete(kind, &ns, &name).await?;
                tracing::info!(app.id = %app_id, k8s.namespace = %ns, k8s.kind = %kind, k8s.name = %name, "deleted an object of an app this cluster no longer runs");
            }
        }
        if found {
            // Look again once the deletions have gone through.
            return Ok(Some(self.cfg.progress_requeue));
        }
        if let Ok(mut a) = self.absent.lock() {
            a.insert(app_id.to_owned());
        }
        Ok(None)
    }

    /// Deletes the namespaces we made for organizations that no longer
    /// exist (with `org_id`, only that organization's); Kubernetes then
    /// deletes everything in them, volumes included. A namespace without our
    /// ownership labels, or of an organization the source still has, is
    /// never touched; a store error deletes nothing. Looks again soon while
    /// a namespace of a deleted organization is terminating.
    async fn sweep_namespaces(&self, org_id: Option<&str>) -> PassResult {
        if !self.kube.is_leader() {
            return Err(Error::NotLeader);
        }
        let selector = org_id.map_or_else(labels::org_objects_selector, labels::org_selector);
        let mut by_org: BTreeMap<String, Vec<DynamicObject>> = BTreeMap::new();
        for ns in self.kube.list(Kind::Namespace, "", &selector).await? {
            let org = ns
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(labels::ORG_ID));
            // A nameless object would make the delete address the collection.
            let named = ns.metadata.name.as_ref().is_some_and(|n| !n.is_empty());
            if let Some(org) = org.filter(|o| named && !o.is_empty()) {
                by_org.entry(org.clone()).or_default().push(ns);
            }
        }
        let mut terminating = false;
        for (org, namespaces) in by_org {
            let exists =
                match tokio::time::timeout(self.cfg.call_timeout, self.source.org_exists(&org))
                    .await
                {
                    Ok(r) => r.map_err(|source| Error::ReadOrg {
                        org_id: org.clone(),
                        source,
                    })?,
                    Err(_) => {
                        return Err(Error::Timeout {
                            op: format!("checking whether organization {org} exists"),
                            timeout: self.cfg.call_timeout,
                        });
                    }
                };
            if exists {
                continue;
            }
            // Its apps' objects go with the namespace: forget them.
            for app in self.apps_of(&org) {
                self.forget(&app);
            }
            for ns in namespaces {
                terminating = true;
                let name = ns.metadata.name.unwrap_or_default();
                if ns.metadata.deletion_timestamp.is_some() {
                    tracing::debug!(org.id = %org, k8s.namespace = %name, "the namespace of a deleted organization is terminating");
                    continue;
                }
                self.kube.delete(Kind::Namespace, "", &name).await?;
                self.kube.namespace_deleted();
                tracing::info!(org.id = %org, k8s.namespace = %name, "deleted the namespace of a deleted organization, with everything in it");
            }
        }
        // One organization's: look again until its namespaces are gone (a
        // pass of one of its apps under way could even recreate one). The
        // sweep of all of them comes back with the resync.
        Ok((terminating && org_id.is_some()).then_some(self.cfg.degraded_requeue))
    }

    /// Deletes every object the app owns (volumes only when asked), waits
    /// until they are gone, then removes the app record.
    async fn delete(&self, d: &DesiredApp) -> PassResult {
        let ns = d.namespace.as_str();
        let selector = labels::app_selector(&d.app_id);
        let mut remaining = Vec::new();
        for kind in Kind::APP_OWNED {
            if kind == Kind::PersistentVolumeClaim && !d.delete_volumes {
                continue;
            }
            for obj in self.kube.list(kind, ns, &selector).await? {
                let name = obj.metadata.name.clone().unwrap_or_default();
                if obj.metadata.deletion_timestamp.is_none() {
                    self.kube.delete(kind, ns, &name).await?;
                }
                remaining.push(format!("{kind}/{name}"));
            }
        }
        // The Deployment's dependents go with it, asynchronously.
        for rs in self.kube.list_replica_sets(ns, &selector).await? {
            remaining.push(format!(
                "ReplicaSet/{}",
                rs.metadata.name.unwrap_or_default()
            ));
        }
        for pod in self.kube.list_pods(ns, &selector).await? {
            remaining.push(format!("Pod/{}", pod.metadata.name.unwrap_or_default()));
        }
        if remaining.is_empty() {
            self.source_call(
                "finalizing the deletion",
                &d.app_id,
                self.source.finalize_app_deletion(&d.app_id),
                |source| Error::FinalizeDeletion {
                    app_id: d.app_id.clone(),
                    source,
                },
            )
            .await?;
            self.forget(&d.app_id);
            tracing::info!(app.id = %d.app_id, k8s.namespace = ns, "app deleted");
            return Ok(None);
        }
        let status = AppStatus {
            phase: AppPhase::Deleting,
            message: Some(format!("waiting for {} objects to go", remaining.len())),
            observed_generation: d.generation,
            ..AppStatus::default()
        };
        self.source_call(
            "recording the status",
            &d.app_id,
            self.source.record_status(&d.app_id, status),
            |source| Error::RecordStatus {
                app_id: d.app_id.clone(),
                source,
            },
        )
        .await?;
        tracing::debug!(app.id = %d.app_id, remaining = %remaining.join(","), "waiting for deleted objects to go");
        Ok(Some(self.cfg.progress_requeue))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_keeps_the_earliest_time_and_skips_apps_in_flight() {
        let now = Instant::now();
        let mut q = Queue::default();
        q.push("a".into(), now + Duration::from_secs(5));
        q.push("a".into(), now);
        q.push("a".into(), now + Duration::from_secs(9));
        q.push("b".into(), now + Duration::from_secs(1));
        q.push("c".into(), now);
        let busy = HashSet::from(["c".to_owned()]);
        assert_eq!(q.next_due(&busy), Some(now));
        assert_eq!(q.pop_ready(now, &busy, 10), vec!["a".to_owned()]);
        assert_eq!(q.next_due(&busy), Some(now + Duration::from_secs(1)));
        assert_eq!(q.pop_ready(now, &HashSet::new(), 10), vec!["c".to_owned()]);
        let later = now + Duration::from_secs(2);
        assert_eq!(q.pop_ready(later, &HashSet::new(), 0), Vec::<String>::new());
        assert_eq!(q.pop_ready(later, &HashSet::new(), 1), vec!["b".to_owned()]);
        assert_eq!(q.next_due(&HashSet::new()), None);
    }
}
