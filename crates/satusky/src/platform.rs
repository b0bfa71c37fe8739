//! Runs one reconciler per registered cluster, each limited to the apps
//! placed on it, and starts reconcilers for clusters registered later.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use satusky_core::Services;
use satusky_core::apps::DesiredApp;
use satusky_core::bus::Notice;
use satusky_core::pagination::PageRequest;
use satusky_reconciler::{AppSource, Reconciler, ReconcilerConfig};
use satusky_types::apps::AppStatus;
use satusky_types::page::Page;
use tokio::sync::{broadcast, watch};

/// The apps of one cluster. Apps not placed yet belong to the cluster
/// placement would pick for them.
#[derive(Clone)]
struct ClusterApps {
    services: Services,
    cluster_id: String,
}

impl ClusterApps {
    async fn owns(&self, desired: &DesiredApp) -> satusky_core::Result<bool> {
        match &desired.cluster_id {
            Some(id) => Ok(*id == self.cluster_id),
            // A placement error is an error, never "not ours": that would
            // delete a running app's objects from this cluster.
            None => Ok(self
                .services
                .place(desired.spec.zone.as_deref())
                .await?
                .is_some_and(|c| c.id == self.cluster_id)),
        }
    }
}

#[async_trait]
impl AppSource for ClusterApps {
    async fn desired_app(&self, app_id: &str) -> satusky_core::Result<Option<DesiredApp>> {
        match self.services.desired_app(app_id).await? {
            // An app placed elsewhere is, for this cluster, gone: its objects here are removed.
            Some(d) if self.owns(&d).await? => Ok(Some(d)),
            _ => Ok(None),
        }
    }

    async fn app_ids(&self, page: &PageRequest) -> satusky_core::Result<Page<String>> {
        // Ids of every app; `desired_app` filters, so foreign ids cost a read, not a write.
        self.services.app_ids(page).await
    }

    async fn record_status(&self, app_id: &str, status: AppStatus) -> satusky_core::Result<()> {
        self.services.record_status(app_id, status).await
    }

    async fn record_event(&self, app_id: &str, kind: &str, message: String, release: Option<u64>) {
        self.services
            .record_event(app_id, kind, message, release)
            .await;
    }

    async fn finalize_app_deletion(&self, app_id: &str) -> satusky_core::Result<()> {
        self.services.finalize_app_deletion(app_id).await
    }

    /// Organizations are global: a deleted one's namespace goes from every
    /// cluster, whichever its apps were placed on.
    async fn org_exists(&self, org_id: &str) -> satusky_core::Result<bool> {
        AppSource::org_exists(&self.services, org_id).await
    }

    fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.services.bus().subscribe()
    }
}

/// A kube client from a kubeconfig, or in-cluster credentials.
pub async fn client_for(kubeconfig: Option<&str>) -> anyhow::Result<kube::Client> {
    let config = match kubeconfig {
        Some(yaml) => {
            let kc = kube::config::Kubeconfig::from_yaml(yaml)
                .context("reading the cluster's kubeconfig")?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .context("using the cluster's kubeconfig")?
        }
        None => kube::Config::incluster().context("no kubeconfig and not running in a cluster")?,
    };
    kube::Client::try_from(config).context("building the kube client")
}

/// Supervises reconcilers until `stop` turns true. `local` maps cluster names
/// to clients that are not reached through stored credentials (the embedded
/// simulator of `satusky dev`).
pub async fn run_reconcilers(
    services: Services,
    config: ReconcilerConfig,
    local: HashMap<String, kube::Client>,
    workload: KubeWorkload,
    mut stop: watch::Receiver<bool>,
) {
    let mut running: HashSet<String> = HashSet::new();
    let mut tasks = Vec::new();
    loop {
        match services.cluster_credentials().await {
            Ok(clusters) => {
                for (cluster, kubeconfig) in clusters {
                    if running.contains(&cluster.id) {
                        continue;
                    }
                    let client = match local.get(&cluster.name) {
                        Some(c) => c.clone(),
                        None => match client_for(kubeconfig.as_deref()).await {
                            Ok(c) => c,
                            Err(e) => {
                                tracing::warn!(cluster = %cluster.name, error = %format!("{e:#}"), "cannot reach cluster");
                                let _ = services
                                    .set_cluster_health(&cluster.id, false, Some(&format!("{e:#}")))
                                    .await;
                                continue;
                            }
                        },
                    };
                    let _ = services.set_cluster_health(&cluster.id, true, None).await;
                    workload.register(&cluster.id, client.clone());
                    tracing::info!(cluster = %cluster.name, "starting reconciler");
                    let source = ClusterApps {
                        services: services.clone(),
                        cluster_id: cluster.id.clone(),
                    };
                    let mut cfg = config.clone();
                    cfg.lease.holder_identity =
                        format!("{}-{}", cfg.lease.holder_identity, cluster.name);
                    let reconciler = Reconciler::with_source(Arc::new(source), client, cfg);
                    let mut stop_one = stop.clone();
                    tasks.push(tokio::spawn(async move {
                        reconciler
                            .run(async move {
                                let _ = stop_one.wait_for(|s| *s).await;
                            })
                            .await;
                    }));
                    running.insert(cluster.id);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot list clusters"),
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            () = tokio::time::sleep(Duration::from_secs(10)) => {}
        }
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// Live reads of apps from the clusters the reconcilers run against.
#[derive(Clone, Default)]
pub struct KubeWorkload {
    clients: Arc<std::sync::RwLock<HashMap<String, kube::Client>>>,
}

impl std::fmt::Debug for KubeWorkload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.clients.read().map_or(0, |m| m.len());
        write!(f, "KubeWorkload({n} clusters)")
    }
}

impl KubeWorkload {
    pub fn register(&self, cluster_id: &str, client: kube::Client) {
        if let Ok(mut m) = self.clients.write() {
            m.insert(cluster_id.to_owned(), client);
        }
    }

    fn client(&self, cluster_id: Option<&str>) -> satusky_core::Result<kube::Client> {
        let unavailable = |why: &str| {
            satusky_core::Error::new(satusky_types::ErrorCode::Unavailable, why.to_owned())
        };
        let m = self
            .clients
            .read()
            .map_err(|_| unavailable("cluster registry unavailable"))?;
        match cluster_id {
            Some(id) => m
                .get(id)
                .cloned()
                .ok_or_else(|| unavailable("the app's cluster is not reachable from this server")),
            None if m.len() == 1 => Ok(m
                .values()
                .next()
                .cloned()
                .ok_or_else(|| unavailable("no cluster"))?),
            None => Err(unavailable("the app is not placed on a cluster yet")),
        }
    }

    async fn pods(
        &self,
        target: &satusky_core::apps::WorkloadTarget,
        opts: &satusky_core::apps::LogOptions,
    ) -> satusky_core::Result<(kube::Api<k8s_openapi::api::core::v1::Pod>, Vec<String>)> {
        let api: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(
            self.client(target.cluster_id.as_deref())?,
            &target.namespace,
        );
        let lp = kube::api::ListParams::default()
            .labels(&format!("satusky.com/app-id={}", target.app_id));
        let list = api.list(&lp).await.map_err(satusky_core::Error::internal)?;
        let mut names: Vec<String> = list
            .items
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect();
        if let Some(pod) = &opts.pod {
            names.retain(|n| n == pod);
            if names.is_empty() {
                return Err(satusky_core::Error::validation(format!(
                    "`{pod}` is not a replica of `{}`",
                    target.app_name
                )));
            }
        }
        names.sort();
        Ok((api, names))
    }
}

fn log_params(opts: &satusky_core::apps::LogOptions, follow: bool) -> kube::api::LogParams {
    kube::api::LogParams {
        follow,
        tail_lines: Some(i64::from(opts.tail.unwrap_or(if follow {
            10
        } else {
            100
        }))),
        since_seconds: opts.since_seconds.and_then(|s| i64::try_from(s).ok()),
        ..kube::api::LogParams::default()
    }
}

#[async_trait]
impl satusky_core::apps::Workload for KubeWorkload {
    async fn volume_claims(
        &self,
        target: &satusky_core::apps::WorkloadTarget,
    ) -> satusky_core::Result<Vec<(String, Option<String>, Option<String>)>> {
        let Ok(client) = self.client(target.cluster_id.as_deref()) else {
            // Not running anywhere reachable: only the spec is known.
            return Ok(Vec::new());
        };
        let api: kube::Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
            kube::Api::namespaced(client, &target.namespace);
        let lp = kube::api::ListParams::default()
            .labels(&format!("satusky.com/app-id={}", target.app_id));
        let list = api.list(&lp).await.map_err(satusky_core::Error::internal)?;
        let prefix = format!("{}-", target.app_name);
        Ok(list
            .items
            .into_iter()
            .filter_map(|pvc| {
                let name = pvc.metadata.name?;
                let volume = name.strip_prefix(&prefix)?.to_owned();
                let status = pvc.status.unwrap_or_default();
                let capacity = status
                    .capacity
                    .and_then(|c| c.get("storage").map(|q| q.0.clone()));
                Some((volume, status.phase, capacity))
            })
            .collect())
    }

    async fn delete_volume_claim(
        &self,
        target: &satusky_core::apps::WorkloadTarget,
        volume: &str,
    ) -> satusky_core::Result<()> {
        let api: kube::Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
            kube::Api::namespaced(
                self.client(target.cluster_id.as_deref())?,
                &target.namespace,
            );
        let name = satusky_core::apps::claim_name(&target.app_name, volume);
        match api.delete(&name, &kube::api::DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(satusky_core::Error::internal(e)),
        }
    }

    async fn logs(
        &self,
        target: &satusky_core::apps::WorkloadTarget,
        opts: &satusky_core::apps::LogOptions,
    ) -> satusky_core::Result<Vec<satusky_types::apps::LogLine>> {
        let (api, pods) = self.pods(target, opts).await?;
        let mut out = Vec::new();
        for pod in pods {
            match api.logs(&pod, &log_params(opts, false)).await {
                Ok(text) => out.extend(text.lines().map(|line| satusky_types::apps::LogLine {
                    pod: pod.clone(),
                    line: line.to_owned(),
                })),
                // A replica that is not running yet has no log: skip it.
                Err(kube::Error::Api(e)) if e.code == 400 || e.code == 404 => {}
                Err(e) => return Err(satusky_core::Error::internal(e)),
            }
        }
        Ok(out)
    }

    async fn follow_logs(
        &self,
        target: &satusky_core::apps::WorkloadTarget,
        opts: &satusky_core::apps::LogOptions,
    ) -> satusky_core::Result<futures::stream::BoxStream<'static, satusky_types::apps::LogLine>>
    {
        use futures::{AsyncBufReadExt as _, StreamExt as _};
        let (api, pods) = self.pods(target, opts).await?;
        let mut streams = Vec::new();
        for pod in pods {
            match api.log_stream(&pod, &log_params(opts, true)).await {
                Ok(reader) => {
                    let name = pod.clone();
                    streams.push(
                        reader
                            .lines()
                            .filter_map(move |l| {
                                let name = name.clone();
                                async move {
                                    l.ok().map(|line| satusky_types::apps::LogLine {
                                        pod: name,
                                        line,
                                    })
                                }
                            })
                            .boxed(),
                    );
                }
                Err(kube::Error::Api(e)) if e.code == 400 || e.code == 404 => {}
                Err(e) => return Err(satusky_core::Error::internal(e)),
            }
        }
        Ok(futures::stream::select_all(streams).boxed())
    }
}
