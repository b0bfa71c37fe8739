//! Cancelling a machine operation against kube-sim and talos-sim: a drain
//! held by a PodDisruptionBudget stops at once (long before its timeout),
//! the node is schedulable again and the protected pod is untouched; a
//! reboot cancelled while it drains never reaches Talos.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Api;
use kube::api::{ListParams, PostParams};
use satusky_types::machines::{DrainRequest, Machine, MachineState, PowerRequest};
use serde_json::json;

use crate::support::{Env, ORG, wait_for};

fn finished(m: &Machine) -> bool {
    m.operation.as_ref().is_some_and(|op| op.phase != "running")
}

fn blocked_by_budget(m: &Machine) -> bool {
    m.operation
        .as_ref()
        .and_then(|op| op.drain.as_ref())
        .is_some_and(|d| d.blockers.iter().any(|b| b.reason.contains("web-pdb")))
}

/// The `web` pods, wherever they run.
async fn web_pods(env: &Env) -> Result<Vec<Pod>> {
    let api: Api<Pod> = Api::namespaced(env.kube.clone(), "default");
    Ok(api
        .list(&ListParams::default().labels("app=web"))
        .await?
        .items)
}

fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// One `web` pod pinned to `node` under a budget that allows no disruption;
/// returns the pod's uid once the budget counts it.
async fn protected_pod(env: &Env, node: &str) -> Result<String> {
    let labels = json!({"app": "web"});
    let deployments: Api<Deployment> = Api::namespaced(env.kube.clone(), "default");
    deployments
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
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
            }))?,
        )
        .await?;
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(env.kube.clone(), "default");
    pdbs.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "metadata": {"name": "web-pdb"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": labels}}
        }))?,
    )
    .await?;
    let uid = wait_for(
        Duration::from_secs(15),
        "the web pod ready on the node",
        || async {
            let pods = web_pods(env).await?;
            Ok(pods
                .iter()
                .find(|p| ready(p))
                .and_then(|p| p.metadata.uid.clone()))
        },
    )
    .await?;
    wait_for(
        Duration::from_secs(10),
        "the budget to count the pod",
        || async {
            let s = pdbs.get("web-pdb").await?.status;
            Ok(s.filter(|s| s.current_healthy == 1).map(|_| ()))
        },
    )
    .await?;
    Ok(uid)
}

/// The web pod is the same one, on `node`, not being deleted.
async fn untouched(env: &Env, uid: &str, node: &str) -> Result<()> {
    let pods = web_pods(env).await?;
    assert_eq!(pods.len(), 1, "{pods:#?}");
    let p = &pods[0];
    assert_eq!(p.metadata.uid.as_deref(), Some(uid));
    assert!(p.metadata.deletion_timestamp.is_none(), "{p:#?}");
    assert_eq!(
        p.spec.as_ref().and_then(|s| s.node_name.as_deref()),
        Some(node)
    );
    assert!(ready(p));
    Ok(())
}

async fn schedulable(env: &Env, node: &str) -> Result<bool> {
    let n = env.node(node).await?.context("node")?;
    Ok(n.spec.and_then(|s| s.unschedulable) != Some(true))
}

#[tokio::test]
async fn a_drain_held_by_a_disruption_budget_is_cancelled_at_once_and_the_node_is_schedulable_again()
-> Result<()> {
    let env = Env::new().await?;
    let (fleet, m) = env.joined_machine().await?;
    let node = m.node_name.clone().context("node")?;
    let uid = protected_pod(&env, &node).await?;

    // Ten minutes of budget: only a cancel ends it within the test.
    env.services
        .drain_machine(
            &env.ctx,
            ORG,
            &m.name,
            &DrainRequest {
                timeout_seconds: Some(600),
                delete_emptydir_data: false,
            },
        )
        .await?;
    let blocked = env
        .wait_machine(
            &m.name,
            "blocked by the budget",
            Duration::from_secs(15),
            blocked_by_budget,
        )
        .await?;
    assert_eq!(blocked.state, MachineState::Draining);
    assert!(!schedulable(&env, &node).await?, "cordoned for the drain");

    let asked = Instant::now();
    let requested = env
        .services
        .cancel_machine_operation(&env.ctx, ORG, &m.name)
        .await?;
    let op = requested.operation.context("operation")?;
    assert!(op.cancel_requested);
    assert_eq!(op.cancel_requested_by.as_deref(), Some("ops@example.com"));
    let done = env
        .wait_machine(&m.name, "stopped", Duration::from_secs(10), finished)
        .await?;
    let took = asked.elapsed();
    // One poll (100 ms) and an uncordon, not the drain's 600 s.
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let op = done.operation.clone().context("operation")?;
    assert_eq!(op.phase, "cancelled", "{op:#?}");
    assert_eq!(done.state, MachineState::Joined);
    assert_eq!(
        op.drain.as_ref().map(|d| d.phase.as_str()),
        Some("cancelled")
    );
    assert!(schedulable(&env, &node).await?, "our cordon is gone");
    untouched(&env, &uid, &node).await?;
    // Still untouched a while later: nothing keeps evicting.
    tokio::time::sleep(Duration::from_millis(800)).await;
    untouched(&env, &uid, &node).await?;
    let events = env.events(&m.name).await?;
    assert!(
        events.iter().any(|(k, msg)| k == "operation.cancelled"
            && msg == "drain cancelled by ops@example.com at drain_node; machine is joined"),
        "{events:#?}"
    );
    // Nothing is left to cancel.
    let again = env
        .services
        .cancel_machine_operation(&env.ctx, ORG, &m.name)
        .await
        .expect_err("nothing runs");
    assert_eq!(again.code, satusky_types::ErrorCode::MachineStateConflict);
    fleet.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_reboot_cancelled_while_its_drain_is_held_by_a_budget_never_reboots() -> Result<()> {
    let env = Env::new().await?;
    let (fleet, m) = env.joined_machine().await?;
    let node = m.node_name.clone().context("node")?;
    let boot_id = |n: Option<k8s_openapi::api::core::v1::Node>| {
        n.and_then(|n| n.status)
            .and_then(|s| s.node_info)
            .map(|i| i.boot_id)
    };
    let before = boot_id(env.node(&node).await?);
    let uid = protected_pod(&env, &node).await?;

    env.services
        .reboot_machine(&env.ctx, ORG, &m.name, &PowerRequest { force: false })
        .await?;
    env.wait_machine(
        &m.name,
        "blocked by the budget",
        Duration::from_secs(15),
        blocked_by_budget,
    )
    .await?;
    env.services
        .cancel_machine_operation(&env.ctx, ORG, &m.name)
        .await?;
    let done = env
        .wait_machine(&m.name, "stopped", Duration::from_secs(10), finished)
        .await?;
    let op = done.operation.clone().context("operation")?;
    assert_eq!(
        (op.kind.as_str(), op.phase.as_str()),
        ("reboot", "cancelled")
    );
    assert_eq!(done.state, MachineState::Joined);
    assert!(schedulable(&env, &node).await?);
    // Longer than a simulated reboot takes: the node never went down.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(boot_id(env.node(&node).await?), before);
    let events = env.events(&m.name).await?;
    assert!(
        !events
            .iter()
            .any(|(k, msg)| k == "node.not_ready"
                || (k == "talos.stage" && msg.contains("rebooting"))),
        "{events:#?}"
    );
    assert_eq!(env.machine(&m.name).await?.state, MachineState::Joined);
    untouched(&env, &uid, &node).await?;
    fleet.stop().await;
    Ok(())
}
