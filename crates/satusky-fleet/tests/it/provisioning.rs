use std::time::Duration;

use anyhow::Result;
use satusky_core::fleet::SigningKey;
use satusky_core::fleet::jointoken::{self, Claims};
use satusky_types::machines::MachineState;
use talos_sim::ProvisionStatus;

use crate::support::{Env, ORG, wait_for};

#[tokio::test]
async fn a_machine_provisioning_with_a_valid_token_is_discovered_in_the_tokens_organization()
-> Result<()> {
    let env = Env::new().await?;
    let token = env.join_token("rack-1").await?;
    let fleet = env.machines(1, &token).await?;
    let sim = fleet.machine(0);
    let m = wait_for(
        Duration::from_secs(15),
        "the machine to be admitted",
        || async { Ok(env.list().await?.into_iter().next()) },
    )
    .await?;
    assert_eq!(m.org, ORG);
    assert_eq!(m.state, MachineState::Discovered);
    assert_eq!(m.uuid, sim.uuid());
    assert!(m.link.connected);
    // The address the provisioning server handed out is the one recorded.
    let handed_out = sim.overlay_address().unwrap_or_default();
    assert!(
        handed_out.starts_with(&m.link.address),
        "{handed_out} vs {}",
        m.link.address
    );
    // Facts come from the machine's Talos API.
    assert_eq!(m.name, sim.hostname().to_lowercase());
    assert!(
        m.hardware.cpu_cores > 0 && m.hardware.memory_bytes > 0,
        "{:?}",
        m.hardware
    );
    assert!(!m.hardware.arch.is_empty());
    let events = env.events(&m.name).await?;
    assert!(
        events.iter().any(|(k, _)| k == "machine.discovered"),
        "{events:#?}"
    );
    // Talos events reach the machine's history through the sink.
    wait_for(Duration::from_secs(5), "a Talos stage event", || async {
        Ok(env
            .events(&m.name)
            .await?
            .into_iter()
            .find(|(k, _)| k == "talos.stage"))
    })
    .await?;
    // Metrics through core, in SI units from Talos's counters.
    let metrics = env.services.machine_metrics(&env.ctx, ORG, &m.name).await?;
    assert_eq!(metrics.memory_total_bytes, m.hardware.memory_bytes);
    assert!(
        metrics.memory_used_bytes > 0 && metrics.memory_used_bytes < metrics.memory_total_bytes
    );
    assert!((0.0..=100.0).contains(&metrics.cpu_percent), "{metrics:?}");
    assert!(metrics.net_rx_bytes_per_sec >= 0.0);
    // A second boot re-provisions the same record.
    sim.reboot();
    wait_for(Duration::from_secs(10), "a re-provisioning", || async {
        Ok(env
            .events(&m.name)
            .await?
            .into_iter()
            .find(|(_, msg)| msg.starts_with("re-provisioned")))
    })
    .await?;
    assert_eq!(env.list().await?.len(), 1);
    fleet.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_machine_in_maintenance_mode_is_admitted_with_facts_from_its_maintenance_api()
-> Result<()> {
    let env = Env::new().await?;
    let token = env.join_token("bare-metal").await?;
    let fleet = talos_sim::Fleet::builder()
        .machines(1)
        .maintenance_mode(true)
        .siderolink_endpoint(env.handle.siderolink_url())
        .join_token(&token)
        .event_sink(env.handle.event_sink_addr().to_string())
        .timings(crate::support::sim_timings())
        .start()
        .await?;
    env.endpoints.insert(
        fleet.machine(0).uuid(),
        fleet.machine(0).api_addr().to_string(),
    );
    // No client identity at all: maintenance mode needs none.
    let m = wait_for(
        Duration::from_secs(15),
        "the machine to be admitted",
        || async { Ok(env.list().await?.into_iter().next()) },
    )
    .await?;
    assert_eq!(m.state, MachineState::Discovered);
    assert_eq!(m.name, fleet.machine(0).hostname().to_lowercase());
    assert!(m.hardware.cpu_cores > 0, "{:?}", m.hardware);
    assert!(m.link.connected);
    fleet.stop().await;
    Ok(())
}

#[tokio::test]
async fn facts_a_machine_did_not_report_at_admission_are_learnt_once_its_api_answers() -> Result<()>
{
    let env = Env::with_facts_timeout(Duration::ZERO).await?;
    let token = env.join_token("slow").await?;
    let fleet = env.machines(1, &token).await?;
    let m = wait_for(
        Duration::from_secs(15),
        "the machine to be admitted",
        || async { Ok(env.list().await?.into_iter().next()) },
    )
    .await?;
    let m = env
        .wait_machine(&m.id, "given its facts", Duration::from_secs(10), |m| {
            m.hardware.cpu_cores > 0
        })
        .await?;
    assert_eq!(
        m.system_labels.get("hostname"),
        Some(&fleet.machine(0).hostname().to_lowercase())
    );
    fleet.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_machine_removed_by_force_is_refused_when_it_provisions_again() -> Result<()> {
    let env = Env::new().await?;
    let token = env.join_token("rack-2").await?;
    let fleet = env.machines(1, &token).await?;
    let m = wait_for(
        Duration::from_secs(15),
        "the machine to be admitted",
        || async { Ok(env.list().await?.into_iter().next()) },
    )
    .await?;
    let links = env.handle.links();
    let peer = wait_for(Duration::from_secs(15), "its WireGuard peer", || async {
        Ok(links.link(&m.id, &m.uuid).map(|l| l.public_key))
    })
    .await?;
    env.services
        .decommission_machine(
            &env.ctx,
            ORG,
            &m.name,
            &satusky_types::machines::DecommissionRequest {
                force: true,
                wipe_user_disks: false,
            },
        )
        .await?;
    env.wait_machine(&m.id, "marked for a wipe", Duration::from_secs(10), |m| {
        m.state == MachineState::NeedsWipe
            && m.operation.as_ref().is_some_and(|op| op.phase != "running")
    })
    .await?;
    // Its SideroLink peer is removed: that key's handshakes are ignored now.
    assert!(
        links
            .endpoint()
            .link(satusky_machines::PeerRef::Key(&peer))
            .is_none(),
        "the removed machine's WireGuard peer is gone"
    );
    let sim = fleet.machine(0);
    sim.reboot();
    let status = sim
        .wait_for_provision(
            |s| matches!(s, ProvisionStatus::Refused { .. }),
            Duration::from_secs(10),
        )
        .await?;
    assert!(
        matches!(&status, ProvisionStatus::Refused { code, .. } if *code == tonic::Code::PermissionDenied),
        "{status:?}"
    );
    assert_eq!(env.list().await?.len(), 1);
    fleet.stop().await;
    Ok(())
}

async fn refused_with(env: &Env, token: &str) -> Result<(tonic::Code, String)> {
    let fleet = env.machines(1, token).await?;
    let status = fleet
        .machine(0)
        .wait_for_provision(
            |s| matches!(s, ProvisionStatus::Refused { .. }),
            Duration::from_secs(10),
        )
        .await?;
    fleet.stop().await;
    match status {
        ProvisionStatus::Refused { code, message } => Ok((code, message)),
        other => anyhow::bail!("not refused: {other:?}"),
    }
}

#[tokio::test]
async fn wrong_expired_and_revoked_tokens_are_refused_with_permission_denied() -> Result<()> {
    let env = Env::with_manual_clock().await?;

    let forged = jointoken::sign(
        &SigningKey::new([9u8; 32]),
        &Claims {
            tid: "0".repeat(26),
            org: "x".into(),
            exp: i64::MAX,
        },
    );
    for wrong in ["not-a-token", forged.as_str()] {
        let (code, message) = refused_with(&env, wrong).await?;
        assert_eq!(code, tonic::Code::PermissionDenied);
        assert_eq!(message, "invalid join token");
    }

    let revoked = env.join_token("revoked").await?;
    env.services
        .revoke_join_token(&env.ctx, ORG, "revoked")
        .await?;
    let (code, message) = refused_with(&env, &revoked).await?;
    assert_eq!(
        (code, message.as_str()),
        (tonic::Code::PermissionDenied, "join token revoked")
    );

    let expiring = env.join_token("expiring").await?;
    if let Some(clock) = &env.clock {
        clock.advance(chrono::Duration::hours(2));
    }
    let (code, message) = refused_with(&env, &expiring).await?;
    assert_eq!(
        (code, message.as_str()),
        (tonic::Code::PermissionDenied, "join token expired")
    );

    assert!(env.list().await?.is_empty());
    Ok(())
}
