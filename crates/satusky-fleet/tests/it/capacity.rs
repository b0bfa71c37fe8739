//! `KubeCapacity` against kube-sim: a node's allocatable resources minus the
//! requests of the pods bound to it, as the scheduler counts them.

use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use satusky_core::apps::parse_quantity;
use satusky_core::fleet::CapacityOps;
use satusky_fleet::capacity::KubeCapacity;
use serde_json::json;

use crate::support::wait_for;

const NODE: &str = "node-0";

fn pod(name: &str, cpu: &str, memory: &str, init_cpu: Option<&str>) -> Pod {
    let mut spec = json!({
        "nodeName": NODE,
        "containers": [
            {"name": "a", "image": "nginx:1", "resources": {"requests": {"cpu": cpu, "memory": memory}}},
            {"name": "b", "image": "nginx:1"}
        ]
    });
    if let Some(c) = init_cpu {
        spec["initContainers"] = json!([
            {"name": "init", "image": "busybox:1", "resources": {"requests": {"cpu": c}}}
        ]);
    }
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec
    }))
    .unwrap_or_default()
}

#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "small non-negative quantities"
)]
fn whole(v: f64) -> u64 {
    v.round() as u64
}

#[tokio::test]
async fn capacity_is_allocatable_minus_the_requests_of_running_pods() -> Result<()> {
    let sim = kube_sim::KubeSim::builder()
        .nodes(2)
        .tick(Duration::from_millis(10))
        .start()
        .await?;
    let client = sim.client()?;
    let cap = KubeCapacity::new(client.clone());
    let nodes: Api<Node> = Api::all(client.clone());
    let node = nodes.get(NODE).await?;
    let alloc = node.status.and_then(|s| s.allocatable).unwrap_or_default();
    let cpu_alloc =
        parse_quantity("cpu", &alloc["cpu"].0).map_err(|e| anyhow::anyhow!(e.message))?;
    let mem_alloc =
        parse_quantity("memory", &alloc["memory"].0).map_err(|e| anyhow::anyhow!(e.message))?;

    let empty = cap.capacity(NODE).await?.expect("the node exists");
    assert_eq!(empty.cpu_allocatable_millis, whole(cpu_alloc * 1000.0));
    assert_eq!(empty.memory_allocatable_bytes, whole(mem_alloc));
    assert_eq!((empty.cpu_requested_millis, empty.pods), (0, 0));
    assert!(empty.schedulable, "{empty:?}");

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(&PostParams::default(), &pod("p1", "250m", "128Mi", None))
        .await?;
    // An init container asking for more than the containers together counts instead.
    pods.create(
        &PostParams::default(),
        &pod("p2", "100m", "64Mi", Some("1")),
    )
    .await?;
    let c = wait_for(Duration::from_secs(10), "two pods counted", || async {
        let c = cap.capacity(NODE).await?.expect("exists");
        Ok((c.pods == 2).then_some(c))
    })
    .await?;
    assert_eq!(c.cpu_requested_millis, 250 + 1000);
    assert_eq!(c.memory_requested_bytes, (128 + 64) << 20);
    // The other node is untouched.
    let other = cap.capacity("node-1").await?.expect("exists");
    assert_eq!(other.pods, 0);

    // Cordoned: no room, and why.
    nodes
        .patch(
            NODE,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"unschedulable": true}})),
        )
        .await?;
    let c = cap.capacity(NODE).await?.expect("exists");
    assert!(!c.schedulable);
    assert_eq!(c.reason.as_deref(), Some("cordoned"));

    assert_eq!(cap.capacity("no-such-node").await?, None);
    Ok(())
}
