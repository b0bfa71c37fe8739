use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use satusky_types::machines::{
    DecommissionRequest, DrainRequest, LabelsChange, Machine, MachineState, PowerRequest,
};
use serde_json::json;

use crate::support::{Env, ORG, in_order, wait_for};

fn finished(m: &Machine) -> bool {
    m.operation.as_ref().is_some_and(|op| op.phase != "running")
}

async fn create<K>(env: &Env, ns: &str, obj: serde_json::Value) -> Result<()>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(env.kube.clone(), ns);
    api.create(&PostParams::default(), &serde_json::from_value(obj)?)
        .await?;
    Ok(())
}

async fn pods_on(env: &Env, node: &str) -> Result<Vec<Pod>> {
    let api: Api<Pod> = Api::all(env.kube.clone());
    Ok(api
        .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
        .await?
        .items)
}

fn owned_by(p: &Pod, kind: &str) -> bool {
    p.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.kind == kind)
}

fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[tokio::test]
async fn a_drain_blocked_by_a_disruption_budget_waits_names_it_and_completes_when_it_allows()
-> Result<()> {
    let env = Env::new().await?;
    let (fleet, m) = env.joined_machine().await?;
    let node = m.node_name.clone().context("node")?;
    let labels = json!({"app": "web"});
    create::<Deployment>(
        &env,
        "default",
        json!({
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "nodeSelector": {"kubernetes.io/hostname": node},
                        "containers": [{"name": "web", "image": "nginx"}]
                    }
                }
            }
        }),
    )
    .await?;
    create::<DaemonSet>(
        &env,
        "default",
        json!({
            "metadata": {"name": "agent"},
            "spec": {
                "selector": {"matchLabels": {"app": "agent"}},
                "template": {
                    "metadata": {"labels": {"app": "agent"}},
                    "spec": {"containers": [{"name": "agent", "image": "agent"}]}
                }
            }
        }),
    )
    .await?;
    create::<PodDisruptionBudget>(
        &env,
        "default",
        json!({
            "metadata": {"name": "web-pdb"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": labels}}
        }),
    )
    .await?;
    wait_for(
        Duration::from_secs(15),
        "web and agent pods ready on the node",
        || async {
            let pods = pods_on(&env, &node).await?;
            let web = pods.iter().any(|p| owned_by(p, "ReplicaSet") && ready(p));
            let agent = pods.iter().any(|p| owned_by(p, "DaemonSet") && ready(p));
            Ok((web && agent).then_some(()))
        },
    )
    .await?;
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(env.kube.clone(), "default");
    wait_for(
        Duration::from_secs(10),
        "the budget to count the pod",
        || async {
            let s = pdbs.get("web-pdb").await?.status;
            Ok(s.filter(|s| s.current_healthy == 1).map(|_| ()))
        },
    )
    .await?;

    env.services
        .drain_machine(
            &env.ctx,
            ORG,
            &m.name,
            &DrainRequest {
                timeout_seconds: Some(60),
                delete_emptydir_data: false,
            },
        )
        .await?;
    let blocked = env
        .wait_machine(
            &m.name,
            "blocked by the budget",
            Duration::from_secs(15),
            |m| {
                m.operation
                    .as_ref()
                    .and_then(|op| op.drain.as_ref())
                    .is_some_and(|d| d.blockers.iter().any(|b| b.reason.contains("web-pdb")))
            },
        )
        .await?;
    assert_eq!(blocked.state, MachineState::Draining);
    let report = blocked.operation.and_then(|o| o.drain).context("report")?;
    assert_eq!(report.phase, "running");
    assert_eq!(report.remaining, 1, "{report:?}");
    assert!(report.blockers[0].pod.starts_with("web-"), "{report:?}");
    // It keeps waiting while the budget does not allow it.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(env.machine(&m.name).await?.state, MachineState::Draining);

    pdbs.patch(
        "web-pdb",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"minAvailable": 0}})),
    )
    .await?;
    let done = env
        .wait_machine(&m.name, "drained", Duration::from_secs(20), finished)
        .await?;
    let op = done.operation.clone().context("operation")?;
    assert_eq!(op.phase, "completed", "{op:#?}");
    assert_eq!(done.state, MachineState::Cordoned);
    let report = op.drain.context("report")?;
    assert_eq!((report.evicted, report.remaining), (1, 0), "{report:?}");

    // DaemonSet pods were skipped; the web pod is gone; the node stays cordoned.
    let pods = pods_on(&env, &node).await?;
    assert!(
        pods.iter()
            .any(|p| owned_by(p, "DaemonSet") && p.metadata.deletion_timestamp.is_none())
    );
    assert!(!pods.iter().any(|p| owned_by(p, "ReplicaSet")), "{pods:#?}");
    let n = env.node(&node).await?.context("node")?;
    assert_eq!(n.spec.and_then(|s| s.unschedulable), Some(true));
    let events = env.events(&m.name).await?;
    assert!(
        events
            .iter()
            .any(|(k, msg)| k == "drain.progress" && msg.contains("web-pdb")),
        "{events:#?}"
    );
    fleet.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_reboot_through_talos_takes_the_node_not_ready_then_ready_and_events_show_it()
-> Result<()> {
    let env = Env::new().await?;
    let (fleet, m) = env.joined_machine().await?;
    let node = m.node_name.clone().context("node")?;
    env.services
        .reboot_machine(&env.ctx, ORG, &m.name, &PowerRequest { force: false })
        .await?;
    let done = env
        .wait_machine(&m.name, "rebooted", Duration::from_secs(30), finished)
        .await?;
    let op = done.operation.clone().context("operation")?;
    assert_eq!(op.phase, "completed", "{op:#?}");
    assert_eq!(done.state, MachineState::Joined);
    // The node came back Ready and uncordoned (we cordoned it for the drain).
    wait_for(Duration::from_secs(10), "node Ready again", || async {
        let events = env.events(&m.name).await?;
        Ok(in_order(&events, &["node.not_ready", "node.ready"]).ok())
    })
    .await?;
    let n = env.node(&node).await?.context("node")?;
    assert_ne!(n.spec.and_then(|s| s.unschedulable), Some(true));
    let events = env.events(&m.name).await?;
    in_order(
        &events,
        &["operation.started", "node.not_ready", "node.ready"],
    )?;
    // Talos's own account arrives through the sink, in its own time.
    let started = events
        .iter()
        .position(|(k, _)| k == "operation.started")
        .context("started")?;
    wait_for(
        Duration::from_secs(5),
        "Talos's rebooting stage",
        || async {
            let events = env.events(&m.name).await?;
            Ok(events
                .iter()
                .skip(started)
                .any(|(k, msg)| k == "talos.stage" && msg.contains("rebooting"))
                .then_some(()))
        },
    )
    .await?;
    fleet.stop().await;
    Ok(())
}

#[tokio::test]
async fn node_labels_set_through_core_reach_the_kubernetes_node_within_a_second() -> Result<()> {
    let env = Env::new().await?;
    let (fleet, m) = env.joined_machine().await?;
    let node = m.node_name.clone().context("node")?;
    env.services
        .change_machine_labels(
            &env.ctx,
            ORG,
            &m.name,
            &LabelsChange {
                set: [("rack".to_owned(), "r7".to_owned())].into_iter().collect(),
                unset: Vec::new(),
            },
        )
        .await?;
    wait_for(Duration::from_secs(1), "the node label", || async {
        let labels = env.node(&node).await?.and_then(|n| n.metadata.labels);
        Ok(labels.filter(|l| l.get("satusky.com/rack").map(String::as_str) == Some("r7")))
    })
    .await?;
    // Level-triggered: a label removed by hand comes back.
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(env.kube.clone());
    nodes
        .patch(
            &node,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"satusky.com/rack": null}}})),
        )
        .await?;
    wait_for(
        Duration::from_secs(3),
        "the label to be restored",
        || async {
            let labels = env.node(&node).await?.and_then(|n| n.metadata.labels);
            Ok(labels.filter(|l| l.get("satusky.com/rack").map(String::as_str) == Some("r7")))
        },
    )
    .await?;
    // The zone is learnt from the node's topology label.
    let zone = env
        .node(&node)
        .await?
        .and_then(|n| n.metadata.labels)
        .and_then(|l| l.get("topology.kubernetes.io/zone").cloned())
        .context("zone label")?;
    env.wait_machine(&m.name, "zoned", Duration::from_secs(3), |m| m.zone == zone)
        .await?;
    env.services
        .change_machine_labels(
            &env.ctx,
            ORG,
            &m.name,
            &LabelsChange {
                set: std::collections::BTreeMap::default(),
                unset: vec!["rack".to_owned()],
            },
        )
        .await?;
    wait_for(Duration::from_secs(1), "the node label to go", || async {
        let labels = env.node(&node).await?.and_then(|n| n.metadata.labels);
        Ok(labels.filter(|l| !l.contains_key("satusky.com/rack")))
    })
    .await?;
    fleet.stop().await;
    Ok(())
}

#[tokio::test]
async fn decommission_leaves_no_node_and_keeps_the_machine_record_and_history() -> Result<()> {
    let env = Env::new().await?;
    let (fleet, m) = env.joined_machine().await?;
    let node = m.node_name.clone().context("node")?;
    let peer = env
        .handle
        .links()
        .link(&m.id, &m.uuid)
        .context("the machine has a WireGuard peer")?
        .public_key;
    env.services
        .decommission_machine(&env.ctx, ORG, &m.name, &DecommissionRequest::default())
        .await?;
    let done = env
        .wait_machine(&m.id, "decommissioned", Duration::from_secs(30), finished)
        .await?;
    let op = done.operation.clone().context("operation")?;
    assert_eq!(op.phase, "completed", "{op:#?}");
    assert_eq!(done.state, MachineState::Decommissioned);
    assert!(done.node_name.is_none());
    assert!(env.node(&node).await?.is_none());
    // Its SideroLink peer is gone: that key's handshakes are ignored from now on.
    assert!(
        env.handle
            .links()
            .endpoint()
            .link(satusky_machines::PeerRef::Key(&peer))
            .is_none(),
        "the decommissioned machine's WireGuard peer was removed"
    );
    // It stays gone: the reset machine is in maintenance mode, with no kubelet.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(env.node(&node).await?.is_none());
    let events = env.events(&m.id).await?;
    in_order(
        &events,
        &[
            "machine.discovered",
            "node.joined",
            "operation.started",
            "operation.completed",
        ],
    )?;
    fleet.stop().await;
    Ok(())
}
