//! The machine's side of SideroLink: `Provision` (once per boot, with the boot's
//! WireGuard key), then the WireGuard peer towards the returned endpoint
//! ([`crate::wireguard`]) and the management API served while the link is up.
//! A dropped link stops both; when the drop ends they come back by themselves
//! (a new source port, a new handshake), without provisioning again.
//!
//! The Talos API is not tunnelled: it stays on the machine's loopback address.

use std::sync::Arc;
use std::time::Duration;

use satusky_proto::sidero::link::ProvisionRequest;
use satusky_proto::sidero::link::provision_service_client::ProvisionServiceClient;
use tokio::sync::{mpsc, oneshot, watch};
use tonic::transport::{ClientTlsConfig, Endpoint};

use crate::config::SiderolinkApi;
use crate::machine::{ProvisionInfo, ProvisionStatus, Shared};
use crate::wireguard::{BootKey, PeerEnd, pick_endpoint, run_peer};

async fn provision_once(shared: &Shared, api: &SiderolinkApi, key: &BootKey) -> ProvisionStatus {
    let timeout = shared.config.timings.provision_timeout;
    let endpoint = match Endpoint::from_shared(api.endpoint.clone()) {
        Ok(e) => e.connect_timeout(timeout).timeout(timeout),
        Err(e) => {
            return ProvisionStatus::Unreachable {
                message: format!("invalid SideroLink endpoint: {e}"),
            };
        }
    };
    let endpoint = if api.endpoint.starts_with("https://") {
        match endpoint.tls_config(ClientTlsConfig::new()) {
            Ok(e) => e,
            Err(e) => {
                return ProvisionStatus::Unreachable {
                    message: format!("TLS setup failed: {e}"),
                };
            }
        }
    } else {
        endpoint
    };
    let channel = match crate::net::connect_from(endpoint, shared.source_ip).await {
        Ok(c) => c,
        Err(e) => {
            return ProvisionStatus::Unreachable {
                message: format!("connect failed: {e}"),
            };
        }
    };
    let mut client = ProvisionServiceClient::new(channel);
    let mut req = tonic::Request::new(ProvisionRequest {
        node_uuid: shared.uuid.clone(),
        node_public_key: key.public_base64(),
        join_token: api.join_token.clone(),
        node_unique_token: Some(shared.unique_token.clone()),
        talos_version: Some(shared.config.talos_version.clone()),
        wireguard_over_grpc: api.grpc_tunnel.then_some(true),
    });
    req.set_timeout(timeout);
    match client.provision(req).await {
        Ok(resp) => {
            let r = resp.into_inner();
            ProvisionStatus::Provisioned(ProvisionInfo {
                node_address_prefix: r.node_address_prefix,
                server_address: r.server_address,
                server_endpoints: r.server_endpoint,
                server_public_key: r.server_public_key,
            })
        }
        Err(status) if status.code() == tonic::Code::Unavailable => ProvisionStatus::Unreachable {
            message: status.message().to_owned(),
        },
        Err(status) => ProvisionStatus::Refused {
            code: status.code(),
            message: status.message().to_owned(),
        },
    }
}

/// Resolves when the WireGuard peer gave up on a stale handshake; never when
/// there is no peer or it stopped for another reason.
async fn stale_peer(peer: &mut Option<tokio::task::JoinHandle<PeerEnd>>) {
    if let Some(h) = peer.as_mut() {
        let end = h.await;
        *peer = None;
        if matches!(end, Ok(PeerEnd::Stale)) {
            return;
        }
    }
    std::future::pending::<()>().await;
}

/// Provisions (retrying until admitted), runs the WireGuard peer, serves the API,
/// and handles link drops, until `cancel` flips.
pub(crate) async fn link_loop(
    shared: Arc<Shared>,
    mut drops: mpsc::UnboundedReceiver<Duration>,
    mut cancel: watch::Receiver<bool>,
) {
    let key = BootKey::generate();
    shared.wireguard.booted(&key);
    let mut provisioned: Option<ProvisionInfo> = None;
    loop {
        if let Some(api) = shared.config.siderolink.clone()
            && provisioned.is_none()
        {
            loop {
                let status = tokio::select! {
                    s = provision_once(&shared, &api, &key) => s,
                    _ = cancel.wait_for(|c| *c) => return,
                };
                match &status {
                    ProvisionStatus::Refused { code, message } => {
                        tracing::warn!(machine.id = %shared.uuid, ?code, %message, "provisioning refused");
                    }
                    ProvisionStatus::Unreachable { message } => {
                        tracing::debug!(machine.id = %shared.uuid, %message, "provisioning server unreachable");
                    }
                    ProvisionStatus::Provisioned(info) => provisioned = Some(info.clone()),
                    _ => {}
                }
                shared.set_provision(status);
                if provisioned.is_some() {
                    shared.wireguard.provisioned();
                    shared.logs.kernel(
                        "user",
                        "warning",
                        "[talos] siderolink connection established",
                    );
                    break;
                }
                tokio::select! {
                    () = tokio::time::sleep(shared.config.timings.provision_retry) => {}
                    _ = cancel.wait_for(|c| *c) => return,
                }
            }
        }

        let (wg_stop, wg_stop_rx) = watch::channel(false);
        let server = match &provisioned {
            Some(info) => pick_endpoint(&info.server_endpoints).await,
            None => None,
        };
        let mut peer = match (&provisioned, server) {
            (Some(info), Some(server)) => Some(tokio::spawn(run_peer(
                shared.clone(),
                key.clone(),
                info.server_public_key.clone(),
                server,
                wg_stop_rx,
            ))),
            (Some(_), None) => {
                tracing::debug!(machine.id = %shared.uuid, "no WireGuard endpoint to dial");
                None
            }
            (None, _) => None,
        };
        shared.lock().link_up = true;
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let server = crate::api::serve(shared.clone(), stop_rx);
        tokio::pin!(server);
        let mut server_ended = false;
        let mut stale = false;
        let dropped = tokio::select! {
            r = &mut server => {
                if let Err(e) = r {
                    tracing::error!(machine.id = %shared.uuid, error = %e, "Talos API server failed");
                }
                server_ended = true;
                None
            }
            d = drops.recv() => d,
            () = stale_peer(&mut peer) => {
                stale = true;
                None
            }
            _ = cancel.wait_for(|c| *c) => None,
        };
        if server_ended {
            let _ = cancel.wait_for(|c| *c).await;
        }
        shared.lock().link_up = false;
        wg_stop.send_replace(true);
        shared.api_gen.send_modify(|g| *g += 1);
        let _ = stop_tx.send(());
        if !server_ended {
            let _ = tokio::time::timeout(Duration::from_secs(1), &mut server).await;
        }
        if let Some(p) = peer {
            let _ = tokio::time::timeout(Duration::from_secs(1), p).await;
        }

        if stale {
            shared.logs.kernel(
                "user",
                "warning",
                "[talos] siderolink handshake is stale, provisioning again",
            );
            provisioned = None;
            continue;
        }
        let Some(down_for) = dropped else { return };
        shared
            .logs
            .kernel("user", "warning", "[talos] siderolink peer is down");
        tokio::select! {
            () = tokio::time::sleep(down_for) => {}
            _ = cancel.wait_for(|c| *c) => return,
        }
        shared
            .logs
            .kernel("user", "warning", "[talos] siderolink peer is up again");
    }
}
