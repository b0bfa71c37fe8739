//! A machine's link is its SideroLink WireGuard peer: a real handshake with
//! the fleet's endpoint, keepalives, down when they stop, back by itself.

use std::time::Duration;

use anyhow::{Result, ensure};

use crate::support::{Env, LINK_DOWN_AFTER, in_order, wait_for};

const T: Duration = Duration::from_secs(15);

#[tokio::test]
async fn a_machines_link_goes_down_when_its_wireguard_traffic_stops_and_comes_back_without_provisioning()
-> Result<()> {
    let env = Env::new().await?;
    let token = env.join_token("links").await?;
    let fleet = env.machines(1, &token).await?;
    let sim = fleet.machine(0);
    let m = wait_for(T, "a discovered machine", || async {
        Ok(env.list().await?.into_iter().next())
    })
    .await?;
    let links = env.handle.links();

    // Up from a real handshake, with the key the machine provisioned with.
    let first = wait_for(T, "a WireGuard handshake", || async {
        Ok(links.link(&m.id, &m.uuid).filter(|l| l.up))
    })
    .await?;
    ensure!(first.handshakes >= 1);
    ensure!(Some(first.public_key.to_base64()) == sim.wireguard_public_key());
    ensure!(first.endpoint == sim.wireguard_local_addr());
    env.wait_machine(&m.name, "connected", T, |m| m.link.connected)
        .await?;

    // The link drops: no keepalives, so down within the configured window.
    sim.drop_link(LINK_DOWN_AFTER * 2);
    env.wait_machine(&m.name, "link down", LINK_DOWN_AFTER * 2, |m| {
        !m.link.connected
    })
    .await?;
    ensure!(!links.is_up(&m.id, &m.uuid));

    // Restored: a new handshake from a new source port, link up again.
    env.wait_machine(&m.name, "link up again", T, |m| m.link.connected)
        .await?;
    let again = links
        .link(&m.id, &m.uuid)
        .ok_or_else(|| anyhow::anyhow!("no peer"))?;
    ensure!(again.up);
    ensure!(again.handshakes > first.handshakes, "a new handshake");
    ensure!(
        again.endpoint != first.endpoint,
        "followed the new source port"
    );
    ensure!(again.public_key == first.public_key);
    ensure!(
        sim.provisions() == 1,
        "provisioned once: {}",
        sim.provisions()
    );
    in_order(&env.events(&m.name).await?, &["link.down", "link.up"])?;
    fleet.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_removed_link_goes_down_and_its_key_is_ignored() -> Result<()> {
    let env = Env::new().await?;
    let token = env.join_token("links").await?;
    let fleet = env.machines(1, &token).await?;
    let m = wait_for(T, "a discovered machine", || async {
        Ok(env.list().await?.into_iter().next())
    })
    .await?;
    let links = env.handle.links();
    let old = wait_for(T, "a WireGuard handshake", || async {
        Ok(links
            .link(&m.id, &m.uuid)
            .filter(|l| l.up)
            .map(|l| l.public_key))
    })
    .await?;

    ensure!(links.remove(&m.id, &m.uuid) == 1);
    env.wait_machine(&m.name, "link down", LINK_DOWN_AFTER * 2, |m| {
        !m.link.connected
    })
    .await?;
    // The removed key is answered no more. (The machine, still admitted,
    // may provision again later and get a new peer: that is its way back.)
    ensure!(
        links
            .endpoint()
            .link(satusky_machines::PeerRef::Key(&old))
            .is_none()
    );
    fleet.stop().await;
    Ok(())
}
