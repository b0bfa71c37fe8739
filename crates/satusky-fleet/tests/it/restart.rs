//! A control-plane restart keeps the machines' SideroLink links: the runtime
//! restores the stored WireGuard peers of live machines, so a machine's link
//! comes back from a handshake without it provisioning again, while a
//! machine removed by force stays removed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use satusky_core::fleet::SigningKey;
use satusky_core::services::{Ctx, Services, ServicesConfig};
use satusky_fleet::{
    FleetConfig, FleetHandle, FleetPorts, FleetRuntime, FleetTimings, NodeOpsSettings,
    SiderolinkSettings, StaticEndpoints, TalosIdentity, TalosOpsSettings, WireguardKey,
};
use satusky_machines::PeerRef;
use satusky_types::machines::{
    CreateJoinTokenRequest, DecommissionRequest, Machine, MachineQuery, MachineState,
};
use talos_sim::Fleet;

use crate::support::{LINK_DOWN_AFTER, ORG, sim_timings, wait_for};

const T: Duration = Duration::from_secs(15);

/// What survives a restart of the fleet runtime: the store, the cluster, the
/// server's WireGuard key and its addresses.
struct Plane {
    services: Services,
    ctx: Ctx,
    _kube_sim: kube_sim::Sim,
    kube: kube::Client,
    ports: FleetPorts,
    endpoints: Arc<StaticEndpoints>,
    key: WireguardKey,
    _dir: tempfile::TempDir,
}

/// Where the first runtime listened; the next one binds the same.
#[derive(Clone, Copy)]
struct Addrs {
    provision: SocketAddr,
    event_sink: SocketAddr,
    wireguard: SocketAddr,
}

impl Plane {
    async fn new() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}", dir.path().join("x.db").display());
        let store = satusky_store::connect(&url).await?;
        let kube_sim = kube_sim::KubeSim::builder()
            .nodes(0)
            .tick(Duration::from_millis(10))
            .start()
            .await?;
        let kube = kube_sim.client()?;
        let ports = FleetPorts::with_settings(
            kube.clone(),
            None,
            NodeOpsSettings::default(),
            TalosOpsSettings {
                rpc_timeout: Duration::from_secs(3),
                ..TalosOpsSettings::default()
            },
        );
        let mut config = ServicesConfig {
            join_token_key: Some(SigningKey::new([7u8; 32])),
            machine_poll_interval: Duration::from_millis(100),
            ..ServicesConfig::default()
        };
        ports.install(&mut config);
        let services = Services::new(store, Arc::new(satusky_core::clock::SystemClock), config);
        services
            .create_user("ops@example.com", "correct horse battery", None)
            .await?;
        let session = services
            .login("ops@example.com", "correct horse battery", "127.0.0.1")
            .await?;
        let principal = services.authenticate(&session.token).await?;
        let ctx = Ctx {
            principal,
            request_id: "test".to_owned(),
        };
        services.create_org(&ctx, ORG, None).await?;
        Ok(Self {
            services,
            ctx,
            _kube_sim: kube_sim,
            kube,
            ports,
            endpoints: StaticEndpoints::new(Duration::from_secs(5)),
            key: WireguardKey::generate(),
            _dir: dir,
        })
    }

    /// Starts a runtime with the persisted server key, on `addrs` (or on
    /// free ports).
    async fn start(&self, addrs: Option<Addrs>) -> Result<FleetHandle> {
        let any: SocketAddr = "127.0.0.1:0".parse()?;
        Ok(FleetRuntime::start(FleetConfig {
            services: self.services.clone(),
            kube: self.kube.clone(),
            talos: self.ports.talos_ops.clone(),
            provision_listen: addrs.map_or(any, |a| a.provision),
            event_sink_listen: addrs.map_or(any, |a| a.event_sink),
            siderolink: SiderolinkSettings {
                wireguard_listen: addrs.map_or(any, |a| a.wireguard),
                wireguard_key: Some(self.key.clone()),
                ..SiderolinkSettings::default()
            },
            endpoints: self.endpoints.clone(),
            timings: FleetTimings {
                resync: Duration::from_millis(200),
                link_poll: Duration::from_millis(300),
                facts_timeout: Duration::from_secs(3),
                wireguard_keepalive: Duration::from_millis(200),
                link_down_after: LINK_DOWN_AFTER,
                ..FleetTimings::default()
            },
        })
        .await?)
    }

    async fn machines(&self, handle: &FleetHandle, n: usize) -> Result<Fleet> {
        let token = self
            .services
            .create_join_token(
                &self.ctx,
                ORG,
                &CreateJoinTokenRequest {
                    name: "restart".to_owned(),
                    expires_in_hours: Some(1),
                },
            )
            .await?
            .token;
        let fleet = Fleet::builder()
            .machines(n)
            .siderolink_endpoint(handle.siderolink_url())
            .join_token(token)
            .event_sink(handle.event_sink_addr().to_string())
            .kube_client(self.kube.clone())
            .timings(sim_timings())
            .start()
            .await?;
        let admin = fleet.admin_identity();
        self.ports.talos_ops.set_identity(TalosIdentity {
            ca_pem: fleet.ca_pem().to_owned(),
            cert_pem: admin.cert_pem.clone(),
            key_pem: admin.key_pem.clone(),
            server_name: None,
        });
        for m in fleet.machines() {
            self.endpoints.insert(m.uuid(), m.api_addr().to_string());
        }
        Ok(fleet)
    }

    async fn machine(&self, key: &str) -> Result<Machine> {
        Ok(self.services.get_machine(&self.ctx, ORG, key).await?)
    }

    async fn by_uuid(&self, uuid: &str) -> Result<Option<Machine>> {
        Ok(self
            .services
            .list_machines(&self.ctx, ORG, &MachineQuery::default())
            .await?
            .items
            .into_iter()
            .find(|m| m.uuid == uuid))
    }
}

#[tokio::test]
async fn after_a_restart_a_machines_link_comes_back_from_a_handshake_without_provisioning_again()
-> Result<()> {
    let plane = Plane::new().await?;
    let first = plane.start(None).await?;
    let addrs = Addrs {
        provision: first.provision_addr(),
        event_sink: first.event_sink_addr(),
        wireguard: first.wireguard_addr(),
    };
    let fleet = plane.machines(&first, 2).await?;
    let (kept_sim, removed_sim) = (fleet.machine(0), fleet.machine(1));
    let kept = wait_for(T, "the first machine admitted", || async {
        plane.by_uuid(kept_sim.uuid()).await
    })
    .await?;
    let removed = wait_for(T, "the second machine admitted", || async {
        plane.by_uuid(removed_sim.uuid()).await
    })
    .await?;
    let links = first.links();
    for (m, sim) in [(&kept, kept_sim), (&removed, removed_sim)] {
        wait_for(T, "a WireGuard handshake", || async {
            Ok(links.link(&m.id, &m.uuid).filter(|l| l.up))
        })
        .await?;
        // Recorded with the key it provisioned with, and where it is heard from.
        let endpoint = sim.wireguard_local_addr().map(|a| a.to_string());
        wait_for(T, "the peer recorded with its endpoint", || async {
            let stored = plane.services.live_machine_links().await?;
            Ok(stored.into_iter().find(|l| {
                l.machine_id == m.id
                    && Some(&l.public_key) == sim.wireguard_public_key().as_ref()
                    && l.last_endpoint == endpoint
            }))
        })
        .await?;
    }
    let kept_key = links.link(&kept.id, &kept.uuid).context("peer")?.public_key;
    let removed_key = links
        .link(&removed.id, &removed.uuid)
        .context("peer")?
        .public_key;
    wait_for(T, "the machine connected", || async {
        let m = plane.machine(&kept.id).await?;
        Ok(m.link.connected.then_some(()))
    })
    .await?;

    // One machine is removed by force: its peer goes, in the store as well.
    plane
        .services
        .decommission_machine(
            &plane.ctx,
            ORG,
            &removed.name,
            &DecommissionRequest {
                force: true,
                wipe_user_disks: false,
            },
        )
        .await?;
    wait_for(T, "the machine marked for a wipe", || async {
        let m = plane.machine(&removed.id).await?;
        Ok((m.state == MachineState::NeedsWipe
            && m.operation.as_ref().is_some_and(|op| op.phase != "running"))
        .then_some(()))
    })
    .await?;
    ensure!(links.endpoint().link(PeerRef::Key(&removed_key)).is_none());

    // The control plane restarts: same store, server key and addresses.
    first.shutdown().await;
    let stored = plane.services.store().list_machine_links().await?;
    ensure!(
        stored.iter().all(|l| l.machine_id != removed.id),
        "the removed machine's peer is forgotten: {stored:?}"
    );
    let second = plane.start(Some(addrs)).await?;
    ensure!(second.wireguard_addr() == addrs.wireguard);
    let links = second.links();

    // Up again from a handshake with the new process, with the same key.
    let again = wait_for(T, "the link up after the restart", || async {
        Ok(links
            .link(&kept.id, &kept.uuid)
            .filter(|l| l.up && l.handshakes >= 1))
    })
    .await?;
    ensure!(again.public_key == kept_key);
    ensure!(Some(again.public_key.to_base64()) == kept_sim.wireguard_public_key());
    wait_for(T, "the machine connected", || async {
        let m = plane.machine(&kept.id).await?;
        Ok(m.link.connected.then_some(()))
    })
    .await?;
    ensure!(
        kept_sim.provisions() == 1,
        "provisioned once: {}",
        kept_sim.provisions()
    );

    // The machine removed by force stays removed: no peer, never connected.
    tokio::time::sleep(LINK_DOWN_AFTER).await;
    ensure!(links.link(&removed.id, &removed.uuid).is_none());
    ensure!(links.endpoint().link(PeerRef::Key(&removed_key)).is_none());
    let m = plane.machine(&removed.id).await?;
    ensure!(
        m.state == MachineState::NeedsWipe && !m.link.connected,
        "{m:#?}"
    );
    ensure!(links.is_up(&kept.id, &kept.uuid), "still up");

    // Rebooted (a new WireGuard key every boot), the machine provisions
    // again: its new peer replaces the restored one, here and in the store.
    kept_sim.reboot();
    let fresh = wait_for(T, "the link up with the new boot's key", || async {
        Ok(links
            .link(&kept.id, &kept.uuid)
            .filter(|l| l.up && l.public_key != kept_key))
    })
    .await?;
    ensure!(Some(fresh.public_key.to_base64()) == kept_sim.wireguard_public_key());
    ensure!(
        links.endpoint().link(PeerRef::Key(&kept_key)).is_none(),
        "the restored peer is replaced"
    );
    ensure!(kept_sim.provisions() >= 2);
    let stored = plane.services.live_machine_links().await?;
    ensure!(
        stored
            .iter()
            .any(|l| l.machine_id == kept.id && l.public_key == fresh.public_key.to_base64()),
        "{stored:?}"
    );

    second.shutdown().await;
    fleet.stop().await;
    Ok(())
}
