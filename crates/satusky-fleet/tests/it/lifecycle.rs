//! Machine lifecycle edges against real simulators: a reboot is over only
//! when the node is Ready with a new boot id, a resumed reboot that already
//! happened is not repeated, and a decommission waits until the reset
//! machine answers in maintenance mode.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use satusky_core::clock::SystemClock;
use satusky_core::fleet::TalosOps as _;
use satusky_core::fleet::ports::{ApiMode, NodeOps as _, TalosTarget};
use satusky_core::services::{Services, ServicesConfig};
use satusky_core::store::StoreError;
use satusky_types::machines::{DecommissionRequest, Machine, MachineState, PowerRequest};
use serde_json::json;
use talos_sim::Stage;

use crate::support::{Env, ORG, wait_for};

fn finished(m: &Machine) -> bool {
    m.operation.as_ref().is_some_and(|op| op.phase != "running")
}

async fn boot_id(env: &Env, node: &str) -> Result<Option<String>> {
    Ok(env
        .ports
        .node_ops
        .node_status(node)
        .await?
        .context("node")?
        .boot_id)
}

#[tokio::test]
async fn a_reboot_is_over_only_once_the_node_is_ready_with_a_new_boot_id() -> Result<()> {
    let env = Env::new().await?;
    let (fleet, m) = env.joined_machine().await?;
    let node = m.node_name.clone().context("node")?;
    let sim = &fleet.machines()[0];
    let boots = sim.boots();
    let before = boot_id(&env, &node)
        .await?
        .context("the kubelet reports a boot id")?;

    env.services
        .reboot_machine(&env.ctx, ORG, &m.name, &PowerRequest { force: true })
        .await?;
    // Talos accepts the reboot before the machine goes down, so the node
    // still looks Ready with its old boot id at first (and a NotReady may be
    // too short to be seen): exactly the window that must not end the wait.
    let mut seen = Vec::new();
    let (done, boots_at_the_end) = loop {
        let s = env.ports.node_ops.node_status(&node).await?;
        if let Some(s) = s {
            seen.push((s.ready, s.boot_id));
        }
        let m = env.machine(&m.name).await?;
        if finished(&m) {
            break (m, sim.boots());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let op = done.operation.clone().context("operation")?;
    assert_eq!(op.phase, "completed", "{op:#?}");
    // The machine had booted again when the operation ended.
    assert_eq!(
        boots_at_the_end,
        boots + 1,
        "before {before}, boots {boots}, now {} {:?}; {seen:?} {:#?}",
        sim.boots(),
        boot_id(&env, &node).await?,
        env.events(&m.name).await?
    );
    let after = boot_id(&env, &node).await?.context("boot id")?;
    assert_ne!(after, before);
    assert!(
        seen.iter()
            .any(|(ready, id)| *ready && id.as_deref() == Some(before.as_str())),
        "the node looked Ready with its old boot id during the reboot: {seen:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sim.boots(), boots + 1, "exactly one reboot");
    let events = env.events(&m.name).await?;
    let want = format!("wait_node_ready: node {node} is Ready (boot id {after})");
    assert!(
        events
            .iter()
            .any(|(k, msg)| k == "operation.step" && *msg == want),
        "{events:#?}"
    );
    fleet.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_reboot_resumed_after_its_call_went_through_does_not_reboot_again() -> Result<()> {
    let env = Env::new().await?;
    let (fleet, m) = env.joined_machine().await?;
    let node = m.node_name.clone().context("node")?;
    let sim = &fleet.machines()[0];
    let boots = sim.boots();
    let before = boot_id(&env, &node).await?.context("boot id")?;

    // The control plane recorded that it was about to reboot the machine,
    // asked Talos, and stopped before recording the step.
    let store = env.services.store().clone();
    for attempt in 0.. {
        let mut r = store.get_machine(&m.id).await?.context("machine")?;
        r.state = MachineState::Rebooting;
        r.operation = Some(json!({
            "id": "op-crashed",
            "kind": "reboot",
            "phase": "running",
            "plan": ["talos_reboot", "wait_node_ready"],
            "step": 0,
            "from_state": "joined",
            "force": true,
            "started_at": chrono::Utc::now(),
            "runner": {"reboot": {"boot_id": before, "requested_at": chrono::Utc::now()}},
        }));
        match store.update_machine(&r).await {
            Ok(_) => break,
            Err(StoreError::Conflict(_)) if attempt < 20 => {}
            Err(e) => return Err(e.into()),
        }
    }
    sim.reboot();

    let mut config = ServicesConfig {
        node_ready_timeout: Duration::from_secs(30),
        machine_poll_interval: Duration::from_millis(100),
        replica_id: "restarted".to_owned(),
        ..ServicesConfig::default()
    };
    env.ports.install(&mut config);
    let restarted = Services::new(store, Arc::new(SystemClock), config);
    assert_eq!(restarted.resume_machine_operations().await?, 1);
    let done = env
        .wait_machine(&m.name, "rebooted", Duration::from_secs(30), finished)
        .await?;
    let op = done.operation.clone().context("operation")?;
    assert_eq!(op.phase, "completed", "{op:#?}");
    assert_ne!(
        boot_id(&env, &node).await?.as_deref(),
        Some(before.as_str())
    );
    // Give a wrong second reboot time to show.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(sim.boots(), boots + 1, "rebooted once, not twice");
    let events = env.events(&m.name).await?;
    assert!(
        events.iter().any(|(k, msg)| k == "operation.step"
            && msg.starts_with(
                "talos_reboot: the reboot asked for before the control plane restarted is under way"
            )),
        "{events:#?}"
    );
    fleet.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_decommission_ends_once_the_reset_machine_answers_in_maintenance_mode() -> Result<()> {
    let env = Env::new().await?;
    let (fleet, m) = env.joined_machine().await?;
    let sim = &fleet.machines()[0];
    let target = TalosTarget {
        machine_id: m.id.clone(),
        uuid: m.uuid.clone(),
        endpoint: sim.api_addr().to_string(),
        overlay_address: String::new(),
    };
    assert_eq!(
        env.ports.talos_ops.api_mode(&target).await?,
        ApiMode::Configured
    );
    env.services
        .decommission_machine(&env.ctx, ORG, &m.name, &DecommissionRequest::default())
        .await?;
    let done = env
        .wait_machine(&m.id, "decommissioned", Duration::from_secs(30), finished)
        .await?;
    let op = done.operation.clone().context("operation")?;
    assert_eq!(op.phase, "completed", "{op:#?}");
    assert_eq!(done.state, MachineState::Decommissioned);
    assert_eq!(sim.stage(), Stage::Maintenance);
    // Our identity no longer works on it; the maintenance API answers.
    assert_eq!(
        env.ports.talos_ops.api_mode(&target).await?,
        ApiMode::Maintenance
    );
    let events = env.events(&m.id).await?;
    let steps: Vec<&str> = events
        .iter()
        .filter(|(k, _)| k == "operation.step")
        .map(|(_, msg)| msg.as_str())
        .collect();
    let at = |prefix: &str| steps.iter().position(|s| s.starts_with(prefix));
    ensure!(
        at("talos_reset: Talos is resetting the machine gracefully")
            < at("wait_maintenance: the machine answers in maintenance mode")
            && at("wait_maintenance:") < at("delete_node:")
            && at("talos_reset:").is_some(),
        "{steps:#?}"
    );
    // Talos said it was resetting before it came back in maintenance mode.
    wait_for(
        Duration::from_secs(5),
        "Talos's resetting stage",
        || async {
            let events = env.events(&m.id).await?;
            Ok(events
                .iter()
                .any(|(k, msg)| k == "talos.stage" && msg.contains("resetting"))
                .then_some(()))
        },
    )
    .await?;
    fleet.stop().await;
    Ok(())
}
