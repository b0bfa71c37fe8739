//! Drift: what others change in the cluster is put back.

use std::time::Duration;

use k8s_openapi::api::core::v1::ResourceQuota;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;

use crate::support::{TestCluster, app};

const NS: &str = "org-acme";

#[tokio::test]
async fn a_deleted_deployment_is_recreated() {
    let c = TestCluster::start().await;
    let r = c.reconciler("r1");
    c.source.put(app("app-1", "web", "ghcr.io/acme/web:1", 2));
    c.wait_available("app-1", 1).await;
    let deps = c.deployments(NS);
    let uid = deps.get("web").await.unwrap().metadata.uid;
    deps.delete("web", &DeleteParams::background())
        .await
        .unwrap();
    c.eventually("a new Deployment", || async {
        deps.get_opt("web")
            .await
            .unwrap()
            .is_some_and(|d| d.metadata.uid != uid)
    })
    .await;
    c.wait_available("app-1", 1).await;
    r.stop().await;
}

#[tokio::test]
async fn replicas_changed_by_another_field_manager_are_restored() {
    let c = TestCluster::start().await;
    let r = c.reconciler("r1");
    c.source.put(app("app-1", "web", "ghcr.io/acme/web:1", 3));
    c.wait_available("app-1", 1).await;
    let deps = c.deployments(NS);
    let pp = PatchParams {
        field_manager: Some("kubectl-edit".into()),
        ..PatchParams::default()
    };
    deps.patch("web", &pp, &Patch::Merge(json!({"spec": {"replicas": 5}})))
        .await
        .unwrap();
    c.eventually("replicas back at 3", || async {
        let d = deps.get("web").await.unwrap();
        d.spec.unwrap().replicas == Some(3)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        deps.get("web").await.unwrap().spec.unwrap().replicas,
        Some(3)
    );
    c.wait_available("app-1", 1).await;
    r.stop().await;
}

#[tokio::test]
async fn a_restart_stamps_the_pod_template_and_replaces_the_pods() {
    let c = TestCluster::start().await;
    let r = c.reconciler("r1");
    c.source.put(app("app-1", "web", "ghcr.io/acme/web:1", 2));
    c.wait_available("app-1", 1).await;
    let before: Vec<String> = c
        .pods(NS, "app-1")
        .await
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    let at = chrono::DateTime::from_timestamp(1_800_000_000, 0);
    c.source.change("app-1", |d| d.restarted_at = at);
    c.wait_available("app-1", 2).await;
    let dep = c.deployments(NS).get("web").await.unwrap();
    let ann = dep
        .spec
        .unwrap()
        .template
        .metadata
        .unwrap()
        .annotations
        .unwrap();
    assert_eq!(ann["satusky.com/restarted-at"], "2027-01-15T08:00:00Z");
    c.eventually("every pod replaced", || async {
        let pods = c.pods(NS, "app-1").await;
        pods.len() == 2
            && pods
                .iter()
                .all(|p| !before.contains(p.metadata.name.as_ref().unwrap()))
    })
    .await;
    r.stop().await;
}

#[tokio::test]
async fn organization_wide_objects_are_repaired_too() {
    let c = TestCluster::start().await;
    let r = c.reconciler("r1");
    c.source.put(app("app-1", "web", "ghcr.io/acme/web:1", 1));
    c.wait_available("app-1", 1).await;
    let policies: Api<NetworkPolicy> = Api::namespaced(c.client.clone(), NS);
    policies
        .delete("satusky-default-deny", &DeleteParams::default())
        .await
        .unwrap();
    let quotas: Api<ResourceQuota> = Api::namespaced(c.client.clone(), NS);
    let pp = PatchParams {
        field_manager: Some("someone".into()),
        ..PatchParams::default()
    };
    quotas
        .patch(
            "satusky-quota",
            &pp,
            &Patch::Merge(json!({"spec": {"hard": {"pods": "1000"}}})),
        )
        .await
        .unwrap();
    c.eventually("the network policy back", || async {
        policies
            .get_opt("satusky-default-deny")
            .await
            .unwrap()
            .is_some()
    })
    .await;
    c.eventually("the quota back at 10 pods", || async {
        let q = quotas.get("satusky-quota").await.unwrap();
        q.spec.unwrap().hard.unwrap()["pods"].0 == "10"
    })
    .await;
    r.stop().await;
}
