//! `KubeNodeOps::drain` directly against kube-sim's own node.

use std::sync::Mutex;
use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use satusky_core::fleet::{DrainOptions, NodeOps};
use satusky_fleet::{KubeNodeOps, NodeOpsSettings};
use satusky_types::machines::DrainReport;
use serde_json::json;

use crate::support::wait_for;

const NODE: &str = "node-0";

async fn cluster() -> Result<(kube_sim::Sim, kube::Client, KubeNodeOps)> {
    let sim = kube_sim::KubeSim::builder()
        .nodes(1)
        .tick(Duration::from_millis(10))
        .pod_start_delay(Duration::from_millis(20))
        .pod_ready_delay(Duration::from_millis(10))
        .pod_stop_delay(Duration::from_millis(20))
        .start()
        .await?;
    let client = sim.client()?;
    let ops = KubeNodeOps::with_settings(
        client.clone(),
        NodeOpsSettings {
            call_timeout: Duration::from_secs(10),
            eviction_retry: Duration::from_millis(200),
            poll_interval: Duration::from_millis(100),
        },
    );
    Ok((sim, client, ops))
}

fn deployment(name: &str, volumes: serde_json::Value) -> serde_json::Value {
    json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [{"name": name, "image": name}],
                    "volumes": volumes
                }
            }
        }
    })
}

async fn running(client: &kube::Client, n: usize) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    wait_for(Duration::from_secs(10), "pods running", || async {
        let list = pods.list(&ListParams::default()).await?.items;
        let up = list
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .count();
        Ok((up >= n).then_some(()))
    })
    .await
}

fn opts(timeout: Duration, delete_emptydir_data: bool) -> DrainOptions {
    DrainOptions {
        timeout,
        delete_emptydir_data,
    }
}

#[tokio::test]
async fn a_drain_refuses_unmanaged_and_emptydir_pods_before_evicting_anything() -> Result<()> {
    let (_sim, client, ops) = cluster().await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pp = PostParams::default();
    deployments
        .create(&pp, &serde_json::from_value(deployment("web", json!([])))?)
        .await?;
    deployments
        .create(
            &pp,
            &serde_json::from_value(deployment(
                "cache",
                json!([{"name": "scratch", "emptyDir": {}}]),
            ))?,
        )
        .await?;
    pods.create(
        &pp,
        &serde_json::from_value(json!({
            "metadata": {"name": "loner"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}
        }))?,
    )
    .await?;
    running(&client, 3).await?;

    let report = ops
        .drain(NODE, &opts(Duration::from_secs(10), false), &|_| {})
        .await?;
    assert_eq!(report.phase, "failed", "{report:?}");
    assert_eq!(report.evicted, 0);
    let mut refused: Vec<(String, bool)> = report
        .blockers
        .iter()
        .map(|b| (b.pod.clone(), b.reason.contains("emptyDir")))
        .collect();
    refused.sort();
    assert_eq!(refused.len(), 2, "{report:?}");
    assert!(
        refused[0].0.starts_with("cache-") && refused[0].1,
        "{report:?}"
    );
    assert_eq!(refused[1], ("loner".to_owned(), false), "{report:?}");
    assert!(
        report
            .blockers
            .iter()
            .any(|b| b.reason.contains("no controller"))
    );
    // Nothing was evicted, and the node is cordoned.
    assert_eq!(pods.list(&ListParams::default()).await?.items.len(), 3);
    assert!(
        ops.node_status(NODE)
            .await?
            .is_some_and(|s| s.unschedulable)
    );

    // Allowing emptyDir data loss is not enough while the unmanaged pod is there.
    let report = ops
        .drain(NODE, &opts(Duration::from_secs(10), true), &|_| {})
        .await?;
    assert_eq!(report.phase, "failed");
    assert_eq!(report.blockers.len(), 1, "{report:?}");

    pods.delete("loner", &DeleteParams::default()).await?;
    let report = ops
        .drain(NODE, &opts(Duration::from_secs(10), true), &|_| {})
        .await?;
    assert_eq!(report.phase, "completed", "{report:?}");
    // Both deployments' pods, and the deleted pod it waited for.
    assert_eq!(report.evicted, 3, "{report:?}");
    Ok(())
}

#[tokio::test]
async fn a_drain_that_cannot_finish_times_out_names_the_budget_and_resumes_later() -> Result<()> {
    let (_sim, client, ops) = cluster().await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "default");
    let pp = PostParams::default();
    deployments
        .create(&pp, &serde_json::from_value(deployment("web", json!([])))?)
        .await?;
    pdbs.create(
        &pp,
        &serde_json::from_value(json!({
            "metadata": {"name": "web-pdb"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}
        }))?,
    )
    .await?;
    running(&client, 1).await?;
    wait_for(
        Duration::from_secs(10),
        "the budget to count the pod",
        || async {
            let s = pdbs.get("web-pdb").await?.status;
            Ok(s.filter(|s| s.current_healthy == 1).map(|_| ()))
        },
    )
    .await?;

    let seen: Mutex<Vec<DrainReport>> = Mutex::new(Vec::new());
    let progress = |r: &DrainReport| seen.lock().unwrap().push(r.clone());
    let report = ops
        .drain(NODE, &opts(Duration::from_secs(1), false), &progress)
        .await?;
    assert_eq!(report.phase, "timed_out", "{report:?}");
    assert_eq!((report.evicted, report.remaining), (0, 1));
    assert!(report.blockers[0].reason.contains("web-pdb"), "{report:?}");
    assert!(report.finished_at.is_some());
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .any(|r| r.phase == "running" && !r.blockers.is_empty()),
        "{seen:?}"
    );
    assert_eq!(seen.last(), Some(&report));

    // The budget allows it now: draining again picks up where the cluster is.
    pdbs.patch(
        "web-pdb",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"minAvailable": 0}})),
    )
    .await?;
    let report = ops
        .drain(NODE, &opts(Duration::from_secs(10), false), &|_| {})
        .await?;
    assert_eq!(report.phase, "completed", "{report:?}");
    assert_eq!((report.evicted, report.remaining), (1, 0));
    // And once more: nothing left to do.
    let report = ops
        .drain(NODE, &opts(Duration::from_secs(10), false), &|_| {})
        .await?;
    assert_eq!(report.phase, "completed");
    assert_eq!(report.evicted, 0);

    // Uncordon clears what cordon set.
    ops.cordon(NODE, false).await?;
    assert!(
        ops.node_status(NODE)
            .await?
            .is_some_and(|s| !s.unschedulable && s.ready)
    );
    Ok(())
}
