//! Fixtures: a simulated cluster, an in-memory app source, running
//! reconcilers, and waiting helpers.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, ListParams};
use satusky_core::apps::DesiredApp;
use satusky_core::bus::{Bus, LocalBus, Notice};
use satusky_core::pagination::PageRequest;
use satusky_reconciler::kinds::Kind;
use satusky_reconciler::{
    AppSource, BackoffConfig, LeaseConfig, Reconciler, ReconcilerConfig, Stats, labels,
};
use satusky_types::apps::{AppPhase, AppSpec, AppStatus, Port};
use satusky_types::page::Page;
use tokio::sync::{broadcast, oneshot};

pub const WAIT: Duration = Duration::from_secs(20);

/// Desired state kept in memory: what the services would hand out.
#[derive(Debug)]
pub struct FakeSource {
    apps: Mutex<BTreeMap<String, DesiredApp>>,
    statuses: Mutex<HashMap<String, AppStatus>>,
    events: Mutex<Vec<(String, String, String)>>,
    deleted_orgs: Mutex<HashSet<String>>,
    /// Whether `org_exists` fails, as a store that cannot answer.
    pub org_reads_fail: std::sync::atomic::AtomicBool,
    bus: Arc<LocalBus>,
}

impl FakeSource {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            apps: Mutex::new(BTreeMap::new()),
            statuses: Mutex::new(HashMap::new()),
            events: Mutex::new(Vec::new()),
            deleted_orgs: Mutex::new(HashSet::new()),
            org_reads_fail: std::sync::atomic::AtomicBool::new(false),
            bus: LocalBus::new(),
        })
    }

    /// Adds (or replaces) an app and tells the reconciler.
    pub fn put(&self, d: DesiredApp) {
        let id = d.app_id.clone();
        self.apps.lock().unwrap().insert(id.clone(), d);
        self.bus.publish(Notice::AppChanged { app_id: id });
    }

    /// Changes an app as a new release would: generation and release bump.
    pub fn change(&self, id: &str, f: impl FnOnce(&mut DesiredApp)) {
        {
            let mut apps = self.apps.lock().unwrap();
            let d = apps.get_mut(id).unwrap();
            f(d);
            d.generation += 1;
            d.release += 1;
        }
        self.bus.publish(Notice::AppChanged {
            app_id: id.to_owned(),
        });
    }

    /// Drops an app without a deletion (its record vanished, or it moved to
    /// another cluster).
    pub fn vanish(&self, id: &str) {
        self.apps.lock().unwrap().remove(id);
        self.poke(id);
    }

    /// Deletes an organization with its apps, as the store does, and tells
    /// the reconciler.
    pub fn delete_org(&self, org_id: &str) {
        self.apps.lock().unwrap().retain(|_, d| d.org_id != org_id);
        self.deleted_orgs.lock().unwrap().insert(org_id.to_owned());
        self.bus.publish(Notice::OrgDeleted {
            org_id: org_id.to_owned(),
        });
    }

    pub fn poke(&self, id: &str) {
        self.bus.publish(Notice::AppChanged {
            app_id: id.to_owned(),
        });
    }

    pub fn status(&self, id: &str) -> Option<AppStatus> {
        self.statuses.lock().unwrap().get(id).cloned()
    }

    pub fn exists(&self, id: &str) -> bool {
        self.apps.lock().unwrap().contains_key(id)
    }

    pub fn events(&self, id: &str) -> Vec<(String, String)> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|(a, _, _)| a == id)
            .map(|(_, k, m)| (k.clone(), m.clone()))
            .collect()
    }
}

#[async_trait]
impl AppSource for FakeSource {
    async fn desired_app(&self, app_id: &str) -> satusky_core::Result<Option<DesiredApp>> {
        Ok(self.apps.lock().unwrap().get(app_id).cloned())
    }

    async fn app_ids(&self, page: &PageRequest) -> satusky_core::Result<Page<String>> {
        let ids: Vec<String> = self
            .apps
            .lock()
            .unwrap()
            .keys()
            .filter(|k| page.after.as_ref().is_none_or(|a| *k > a))
            .take(page.fetch_limit() as usize)
            .cloned()
            .collect();
        Ok(satusky_core::pagination::paginate(ids, page, Clone::clone))
    }

    async fn record_status(&self, app_id: &str, status: AppStatus) -> satusky_core::Result<()> {
        self.statuses
            .lock()
            .unwrap()
            .insert(app_id.to_owned(), status);
        Ok(())
    }

    async fn recorded_status(&self, app_id: &str) -> satusky_core::Result<Option<AppStatus>> {
        Ok(self.status(app_id))
    }

    async fn record_event(&self, app_id: &str, kind: &str, message: String, _release: Option<u64>) {
        self.events
            .lock()
            .unwrap()
            .push((app_id.to_owned(), kind.to_owned(), message));
    }

    async fn finalize_app_deletion(&self, app_id: &str) -> satusky_core::Result<()> {
        self.apps.lock().unwrap().remove(app_id);
        Ok(())
    }

    async fn org_exists(&self, org_id: &str) -> satusky_core::Result<bool> {
        if self
            .org_reads_fail
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return Err(satusky_core::Error::internal("the store is unreachable"));
        }
        Ok(!self.deleted_orgs.lock().unwrap().contains(org_id))
    }

    fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.bus.subscribe()
    }
}

/// A desired app in namespace `org-acme` with `replicas` replicas of `image`
/// and one public HTTP port.
pub fn app(id: &str, name: &str, image: &str, replicas: u32) -> DesiredApp {
    DesiredApp {
        app_id: id.to_owned(),
        app_name: name.to_owned(),
        org_id: "org-1".to_owned(),
        org_slug: "acme".to_owned(),
        namespace: "org-acme".to_owned(),
        generation: 1,
        release: 1,
        spec: AppSpec {
            image: image.to_owned(),
            replicas,
            ports: vec![Port {
                container_port: 8080,
                protocol: "TCP".to_owned(),
                public: true,
            }],
            ..AppSpec::default()
        },
        secrets: BTreeMap::new(),
        restarted_at: None,
        domain: format!("{name}-acme.apps.satusky.test"),
        cluster_id: None,
        deleting: false,
        delete_volumes: false,
    }
}

pub struct TestCluster {
    pub sim: kube_sim::Sim,
    pub client: kube::Client,
    pub source: Arc<FakeSource>,
}

pub fn config(holder: &str) -> ReconcilerConfig {
    ReconcilerConfig {
        resync_period: Duration::from_secs(5),
        progress_requeue: Duration::from_millis(150),
        degraded_requeue: Duration::from_millis(500),
        unschedulable_grace: Duration::ZERO,
        backoff: BackoffConfig {
            initial: Duration::from_millis(50),
            max: Duration::from_secs(1),
            call_retries: 4,
            call_retry_delay: Duration::from_millis(20),
        },
        call_timeout: Duration::from_secs(5),
        lease: LeaseConfig {
            holder_identity: holder.to_owned(),
            duration: Duration::from_secs(2),
            renew_interval: Duration::from_millis(300),
            retry_interval: Duration::from_millis(200),
            ..LeaseConfig::default()
        },
        ..ReconcilerConfig::default()
    }
}

impl TestCluster {
    pub async fn start() -> Self {
        Self::with(|b| b).await
    }

    pub async fn with(f: impl FnOnce(kube_sim::Builder) -> kube_sim::Builder) -> Self {
        let b = kube_sim::KubeSim::builder()
            .nodes(3)
            .tick(Duration::from_millis(10))
            .pod_start_delay(Duration::from_millis(40))
            .pod_ready_delay(Duration::from_millis(20))
            .pod_stop_delay(Duration::from_millis(30));
        let sim = f(b).start().await.expect("kube-sim starts");
        let client = sim.client().expect("a client for kube-sim");
        Self {
            sim,
            client,
            source: FakeSource::new(),
        }
    }

    pub fn reconciler(&self, holder: &str) -> RunningReconciler {
        self.reconciler_with(config(holder))
    }

    pub fn reconciler_with(&self, cfg: ReconcilerConfig) -> RunningReconciler {
        let r = Reconciler::with_source(self.source.clone(), self.client.clone(), cfg);
        RunningReconciler::spawn(r)
    }

    /// Waits until the app's recorded status satisfies `pred`.
    pub async fn wait_status(
        &self,
        id: &str,
        what: &str,
        pred: impl Fn(&AppStatus) -> bool,
    ) -> AppStatus {
        let source = self.source.clone();
        let r = tokio::time::timeout(WAIT, async {
            loop {
                if let Some(s) = source.status(id)
                    && pred(&s)
                {
                    return s;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        })
        .await;
        r.unwrap_or_else(|_| {
            panic!(
                "timed out waiting for {what}; last status: {:#?}",
                self.source.status(id)
            )
        })
    }

    pub async fn wait_available(&self, id: &str, generation: u64) -> AppStatus {
        self.wait_status(id, &format!("Available at generation {generation}"), |s| {
            s.phase == AppPhase::Available && s.observed_generation >= generation
        })
        .await
    }

    /// Waits until `check` passes.
    pub async fn eventually<F, Fut>(&self, what: &str, check: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = bool>,
    {
        let r = tokio::time::timeout(WAIT, async {
            loop {
                if check().await {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        })
        .await;
        assert!(r.is_ok(), "timed out waiting for {what}");
    }

    /// Every object labelled for the app: `(kind, name)`.
    pub async fn owned(&self, ns: &str, app_id: &str) -> BTreeSet<(String, String)> {
        let sel = labels::app_selector(app_id);
        let lp = ListParams::default().labels(&sel);
        let mut out = BTreeSet::new();
        for kind in Kind::APP_OWNED {
            let api: Api<DynamicObject> =
                Api::namespaced_with(self.client.clone(), ns, &kind.api_resource());
            for o in api.list(&lp).await.unwrap().items {
                out.insert((kind.as_str().to_owned(), o.metadata.name.unwrap()));
            }
        }
        out
    }

    /// `(kind, name) -> resourceVersion` of the app's objects and the org's.
    pub async fn versions(&self, ns: &str, app_id: &str) -> BTreeMap<(String, String), String> {
        let mut out = BTreeMap::new();
        let app_sel = labels::app_selector(app_id);
        for kind in Kind::APP_OWNED {
            let api: Api<DynamicObject> =
                Api::namespaced_with(self.client.clone(), ns, &kind.api_resource());
            for o in api
                .list(&ListParams::default().labels(&app_sel))
                .await
                .unwrap()
                .items
            {
                out.insert(
                    (kind.as_str().to_owned(), o.metadata.name.unwrap()),
                    o.metadata.resource_version.unwrap(),
                );
            }
        }
        for kind in [
            Kind::Namespace,
            Kind::ResourceQuota,
            Kind::LimitRange,
            Kind::NetworkPolicy,
        ] {
            let ar = kind.api_resource();
            let api: Api<DynamicObject> = if kind.namespaced() {
                Api::namespaced_with(self.client.clone(), ns, &ar)
            } else {
                Api::all_with(self.client.clone(), &ar)
            };
            for o in api
                .list(&ListParams::default().labels(&labels::managed_selector()))
                .await
                .unwrap()
                .items
            {
                out.insert(
                    (kind.as_str().to_owned(), o.metadata.name.unwrap()),
                    o.metadata.resource_version.unwrap(),
                );
            }
        }
        out
    }

    pub fn deployments(&self, ns: &str) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), ns)
    }

    pub async fn pods(&self, ns: &str, app_id: &str) -> Vec<Pod> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        api.list(&ListParams::default().labels(&labels::app_selector(app_id)))
            .await
            .unwrap()
            .items
    }

    pub async fn replica_sets(&self, ns: &str, app_id: &str) -> Vec<ReplicaSet> {
        let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), ns);
        api.list(&ListParams::default().labels(&labels::app_selector(app_id)))
            .await
            .unwrap()
            .items
    }
}

/// A reconciler running in a task, stoppable gracefully or abruptly.
pub struct RunningReconciler {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    pub stats: Arc<Stats>,
}

impl RunningReconciler {
    pub fn spawn(r: Reconciler) -> Self {
        let stats = r.stats();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(r.run(async move {
            let _ = rx.await;
        }));
        Self {
            stop: Some(tx),
            task,
            stats,
        }
    }

    /// Graceful: finishes passes under way and releases the lease.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
    }

    /// Abrupt, as a crash: the lease is left to expire.
    pub fn crash(self) {
        self.task.abort();
    }

    pub async fn wait_leader(&self) {
        let stats = self.stats.clone();
        let r = tokio::time::timeout(WAIT, async move {
            while stats.snapshot().lease_acquisitions == 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(r.is_ok(), "never became leader");
    }

    /// Waits until `n` more passes have finished.
    pub async fn passes(&self, n: u64) {
        let stats = self.stats.clone();
        let target = stats.snapshot().passes + n;
        let r = tokio::time::timeout(WAIT, async move {
            while stats.snapshot().passes < target {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(r.is_ok(), "passes did not happen");
    }
}

impl Drop for RunningReconciler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `(kind, name)` pairs for assertions.
pub fn objects(pairs: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    pairs
        .iter()
        .map(|(k, n)| ((*k).to_owned(), (*n).to_owned()))
        .collect()
}
