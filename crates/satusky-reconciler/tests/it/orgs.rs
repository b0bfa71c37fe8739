//! Deleting an organization: its namespace goes from the cluster with
//! everything in it; nothing the reconciler does not own is touched.

use std::sync::Arc;
use std::time::Duration;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PersistentVolumeClaim, Service};
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use satusky_core::bus::Notice;
use satusky_core::clock::SystemClock;
use satusky_core::crypto::SecretBox;
use satusky_core::{Ctx, Services, ServicesConfig};
use satusky_reconciler::{Reconciler, ReconcilerConfig, labels};
use satusky_types::apps::{AppPhase, DeployRequest, Port, Volume};

use crate::support::{RunningReconciler, TestCluster, WAIT, app, config};

/// The services over a fresh SQLite store, with a signed-in owner.
struct Platform {
    _dir: tempfile::TempDir,
    services: Services,
    ctx: Ctx,
}

impl Platform {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("satusky.db").display());
        let store = satusky_store::connect(&url).await.unwrap();
        let services = Services::new(
            store,
            Arc::new(SystemClock),
            ServicesConfig {
                secret_box: Some(SecretBox::new(&[7u8; 32])),
                ..ServicesConfig::default()
            },
        );
        services
            .create_user("owner@acme.test", "long enough pw", Some("Owner"))
            .await
            .unwrap();
        let session = services
            .login("owner@acme.test", "long enough pw", "127.0.0.1")
            .await
            .unwrap();
        let ctx = Ctx {
            principal: services.authenticate(&session.token).await.unwrap(),
            request_id: "test".into(),
        };
        Self {
            _dir: dir,
            services,
            ctx,
        }
    }

    /// Creates the org and deploys `web` (one replica, a port, a volume)
    /// in it; returns the org's namespace.
    async fn org_with_app(&self, slug: &str) -> String {
        let org = self
            .services
            .create_org(&self.ctx, slug, None)
            .await
            .unwrap();
        let req = DeployRequest {
            image: "ghcr.io/acme/web:1".into(),
            replicas: Some(1),
            ports: Some(vec![Port {
                container_port: 8080,
                protocol: "TCP".into(),
                public: true,
            }]),
            volumes: Some(vec![Volume {
                name: "data".into(),
                size: "1Gi".into(),
                mount_path: "/data".into(),
            }]),
            create: true,
            ..DeployRequest::default()
        };
        self.services
            .deploy(&self.ctx, slug, "web", &req, None)
            .await
            .unwrap();
        org.namespace
    }

    /// A reconciler over these services, resyncing every second.
    fn reconciler(&self, c: &TestCluster, holder: &str) -> RunningReconciler {
        let cfg = ReconcilerConfig {
            resync_period: Duration::from_secs(1),
            ..config(holder)
        };
        RunningReconciler::spawn(Reconciler::new(
            self.services.clone(),
            c.client.clone(),
            cfg,
        ))
    }

    async fn delete_org(&self, slug: &str) {
        self.services
            .delete_org(&self.ctx, slug, Some(slug))
            .await
            .unwrap();
    }

    async fn wait_available(&self, slug: &str) {
        let r = tokio::time::timeout(WAIT, async {
            loop {
                let app = self.services.get_app(&self.ctx, slug, "web").await.unwrap();
                if app.status.phase == AppPhase::Available {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        assert!(r.is_ok(), "{slug}/web never became available");
    }
}

/// What the cluster holds of one namespace: whether it exists (and is not
/// terminating), and its Deployment, Service and PVC of `web`.
struct Contents {
    namespace: Option<Namespace>,
    deployment: bool,
    service: bool,
    claim: bool,
}

async fn contents(c: &TestCluster, ns: &str) -> Contents {
    let namespaces: Api<Namespace> = Api::all(c.client.clone());
    let deployments: Api<Deployment> = Api::namespaced(c.client.clone(), ns);
    let services: Api<Service> = Api::namespaced(c.client.clone(), ns);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(c.client.clone(), ns);
    Contents {
        namespace: namespaces.get_opt(ns).await.unwrap(),
        deployment: deployments.get_opt("web").await.unwrap().is_some(),
        service: services.get_opt("web").await.unwrap().is_some(),
        claim: claims.get_opt("web-data").await.unwrap().is_some(),
    }
}

fn live(ns: Option<&Namespace>) -> bool {
    ns.is_some_and(|n| n.metadata.deletion_timestamp.is_none())
}

/// A namespace made by hand with these labels, with a ConfigMap in it.
async fn hand_made_namespace(c: &TestCluster, name: &str, labels: &[(&str, &str)]) {
    let namespaces: Api<Namespace> = Api::all(c.client.clone());
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(c.client.clone(), name);
    let map = ConfigMap {
        metadata: ObjectMeta {
            name: Some("keep".to_owned()),
            ..ObjectMeta::default()
        },
        ..ConfigMap::default()
    };
    maps.create(&PostParams::default(), &map).await.unwrap();
}

/// `name -> (uid, resourceVersion, terminating)` of every namespace.
async fn namespaces(c: &TestCluster) -> BTreeMap<String, (String, String, bool)> {
    let api: Api<Namespace> = Api::all(c.client.clone());
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|n| {
            let m = n.metadata;
            (
                m.name.unwrap(),
                (
                    m.uid.unwrap(),
                    m.resource_version.unwrap(),
                    m.deletion_timestamp.is_some(),
                ),
            )
        })
        .collect()
}

async fn config_map_kept(c: &TestCluster, ns: &str) -> bool {
    let maps: Api<ConfigMap> = Api::namespaced(c.client.clone(), ns);
    maps.get_opt("keep").await.unwrap().is_some()
}

async fn wait_gone(c: &TestCluster, ns: &str) {
    c.eventually(
        &format!("namespace {ns} and everything in it to go"),
        || async {
            let got = contents(c, ns).await;
            got.namespace.is_none() && !got.deployment && !got.service && !got.claim
        },
    )
    .await;
}

#[tokio::test]
async fn deleting_an_org_deletes_its_namespace_with_everything_in_it_and_nothing_else() {
    let p = Platform::start().await;
    let ns = p.org_with_app("acme").await;
    let other = p.org_with_app("other").await;
    let c = TestCluster::start().await;
    // Look-alikes made by hand: unlabelled, and ours but naming no organization.
    hand_made_namespace(&c, "org-acme-x", &[]).await;
    hand_made_namespace(
        &c,
        "org-acme-y",
        &[(labels::MANAGED_BY, labels::MANAGED_BY_VALUE)],
    )
    .await;
    // Two replicas: only the lease holder writes.
    let r1 = p.reconciler(&c, "r1");
    let r2 = p.reconciler(&c, "r2");
    p.wait_available("acme").await;
    p.wait_available("other").await;
    let got = contents(&c, &ns).await;
    assert!(live(got.namespace.as_ref()) && got.deployment && got.service && got.claim);
    let before = namespaces(&c).await;
    let other_deployment = c.deployments(&other).get("web").await.unwrap();
    let acme_id = namespaces_get(&c, &ns)
        .await
        .unwrap()
        .metadata
        .labels
        .unwrap()[labels::ORG_ID]
        .clone();

    let mut notices = p.services.bus().subscribe();
    p.delete_org("acme").await;
    let told = tokio::time::timeout(WAIT, async {
        loop {
            if let Notice::OrgDeleted { org_id } = notices.recv().await.unwrap() {
                return org_id;
            }
        }
    })
    .await
    .expect("the deletion was announced on the bus");
    assert_eq!(told, acme_id);
    wait_gone(&c, &ns).await;

    let after = namespaces(&c).await;
    for kept in [other.as_str(), "org-acme-x", "org-acme-y"] {
        let (uid, _, terminating) = &after[kept];
        assert!(!terminating, "{kept} is terminating");
        assert_eq!(uid, &before[kept].0, "{kept} was replaced");
    }
    assert!(config_map_kept(&c, "org-acme-x").await);
    assert!(config_map_kept(&c, "org-acme-y").await);
    let still = c.deployments(&other).get("web").await.unwrap();
    assert_eq!(still.metadata.uid, other_deployment.metadata.uid);
    p.wait_available("other").await;
    let (s1, s2) = (r1.stats.snapshot(), r2.stats.snapshot());
    assert_eq!(
        s1.namespaces_deleted + s2.namespaces_deleted,
        1,
        "{s1:?} {s2:?}"
    );
    let leader = if s1.leader { &s1 } else { &s2 };
    assert_eq!(
        leader.namespaces_deleted, 1,
        "the follower deleted: {s1:?} {s2:?}"
    );

    // Another notice and a resync find nothing to do.
    let quiet = namespaces(&c).await;
    p.services
        .bus()
        .publish(Notice::OrgDeleted { org_id: acme_id });
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        namespaces(&c).await,
        quiet,
        "a second sweep changed namespaces"
    );
    let (t1, t2) = (r1.stats.snapshot(), r2.stats.snapshot());
    assert_eq!(t1.namespaces_deleted + t2.namespaces_deleted, 1);
    r1.stop().await;
    r2.stop().await;
}

#[tokio::test]
async fn an_org_deleted_while_no_reconciler_ran_loses_its_namespace_at_the_next_start() {
    let p = Platform::start().await;
    let ns = p.org_with_app("acme").await;
    let other = p.org_with_app("other").await;
    let c = TestCluster::start().await;
    let r = p.reconciler(&c, "r1");
    p.wait_available("acme").await;
    p.wait_available("other").await;
    r.stop().await;

    // Nobody hears this deletion's notice.
    p.delete_org("acme").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(live(contents(&c, &ns).await.namespace.as_ref()));

    let r = p.reconciler(&c, "r2");
    wait_gone(&c, &ns).await;
    assert!(live(namespaces_get(&c, &other).await.as_ref()));
    assert_eq!(r.stats.snapshot().namespaces_deleted, 1);
    r.stop().await;
}

#[tokio::test]
async fn a_store_that_cannot_answer_deletes_nothing_and_the_sweep_is_retried() {
    let c = TestCluster::start().await;
    let r = c.reconciler("r1");
    c.source.put(app("app-1", "web", "ghcr.io/acme/web:1", 1));
    c.wait_available("app-1", 1).await;
    c.source
        .org_reads_fail
        .store(true, std::sync::atomic::Ordering::Relaxed);
    c.source.delete_org("org-1");
    c.eventually("failed sweeps to be retried", || async {
        r.stats.snapshot().errors.get("store").copied().unwrap_or(0) >= 2
    })
    .await;
    assert!(live(namespaces_get(&c, "org-acme").await.as_ref()));
    c.source
        .org_reads_fail
        .store(false, std::sync::atomic::Ordering::Relaxed);
    wait_gone(&c, "org-acme").await;
    assert_eq!(r.stats.snapshot().namespaces_deleted, 1);
    r.stop().await;
}

async fn namespaces_get(c: &TestCluster, ns: &str) -> Option<Namespace> {
    let api: Api<Namespace> = Api::all(c.client.clone());
    api.get_opt(ns).await.unwrap()
}
