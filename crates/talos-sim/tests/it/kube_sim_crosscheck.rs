//! Cross-check against `kube-sim`, through nothing but the `kube::Client` it hands out.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use talos_sim::{Fleet, Stage, Timings};

const T: Duration = Duration::from_secs(15);

fn ready(node: &Node) -> Option<String> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.clone())
}

async fn wait_ready(nodes: &Api<Node>, name: &str, want: &str) {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        if let Ok(n) = nodes.get(name).await
            && ready(&n).as_deref() == Some(want)
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node {name} never became Ready={want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn machines_register_as_ready_nodes_in_kube_sim_and_go_not_ready_on_reboot() {
    let sim = kube_sim::KubeSim::builder().nodes(0).start().await.unwrap();
    let client = sim.client().unwrap();
    let fleet = Fleet::builder()
        .machines(2)
        .kube_client(client.clone())
        .timings(slow_reboot())
        .start()
        .await
        .unwrap();
    fleet.wait_for_stage(Stage::Running, T).await.unwrap();
    let nodes: Api<Node> = Api::all(client.clone());
    let leases: Api<Lease> = Api::namespaced(client, talos_sim::NODE_LEASE_NAMESPACE);
    for m in fleet.machines() {
        wait_ready(&nodes, m.hostname(), "True").await;
        let node = nodes.get(m.hostname()).await.unwrap();
        let labels = node.metadata.labels.unwrap_or_default();
        assert_eq!(
            labels.get("kubernetes.io/arch").map(String::as_str),
            Some(m.hardware().arch.as_str())
        );
        assert_eq!(
            labels.get("topology.kubernetes.io/zone"),
            Some(&m.hardware().zone)
        );
        let cap = node.status.unwrap().capacity.unwrap();
        assert_eq!(cap["cpu"].0, m.hardware().cpu.logical_cpus().to_string());
        let lease = leases.get(m.hostname()).await.unwrap();
        assert_eq!(
            lease.spec.unwrap().holder_identity.as_deref(),
            Some(m.hostname())
        );
    }
    let m = fleet.machine(0);
    m.reboot();
    wait_ready(&nodes, m.hostname(), "False").await;
    wait_ready(&nodes, m.hostname(), "True").await;
    fleet.stop().await;
    sim.shutdown().await;
}

/// Fast timings, but a reboot long enough for a poller to see the node NotReady.
fn slow_reboot() -> Timings {
    Timings {
        reboot: Duration::from_millis(1500),
        ..Timings::fast()
    }
}
