//! SideroLink admission glue.
//!
//! The satusky-machines `ProvisionServer` asks a [`ProvisionPolicy`] first and
//! allocates the node's overlay address afterwards, so admission is split the
//! way `Services::verify_join_token` suggests: [`CorePolicy`] checks the join
//! token (and refuses machines removed by force) before the server answers;
//! [`admit_provisioned`] then admits the machine into core with the address
//! the server handed out, its Talos endpoint, and the facts its Talos API
//! reports, and binds the record to the machine's WireGuard peer and records
//! that peer in the store (the provisioning server added the peer before it
//! answered; a machine core refuses loses it again).

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use satusky_core::services::{AdmitRequest, Services};
use satusky_machines::{
    Admission, PeerRef, ProvisionPolicy, ProvisionRequestInfo, ProvisionedMachine, PublicKey,
    Refusal,
};
use satusky_types::ErrorCode;
use satusky_types::machines::MachineState;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::links::Links;
use crate::talos_ops::TalosClientOps;

/// Binding carrying the admitting organization.
pub const BINDING_ORG: &str = "satusky.dev/org-id";

/// Where a provisioned machine's Talos API answers.
#[async_trait]
pub trait EndpointResolver: Send + Sync + std::fmt::Debug + 'static {
    /// `host:port` of the Talos API of the machine with `uuid` that was given
    /// `overlay` (the machine's address inside the SideroLink tunnel).
    async fn talos_endpoint(&self, uuid: &str, overlay: Ipv6Addr) -> String;
}

/// Production rule: the Talos API on the overlay address, port 50000.
#[derive(Debug, Clone)]
pub struct OverlayEndpoints {
    pub port: u16,
}

impl Default for OverlayEndpoints {
    fn default() -> Self {
        Self { port: 50000 }
    }
}

#[async_trait]
impl EndpointResolver for OverlayEndpoints {
    async fn talos_endpoint(&self, _uuid: &str, overlay: Ipv6Addr) -> String {
        SocketAddr::new(overlay.into(), self.port).to_string()
    }
}

/// Explicit endpoints per machine UUID (machines reachable through port
/// forwards, or `satusky dev`'s simulated machines), falling back to
/// [`OverlayEndpoints`]. A lookup waits up to `wait` for an entry added
/// concurrently.
#[derive(Debug)]
pub struct StaticEndpoints {
    map: Mutex<HashMap<String, String>>,
    changed: watch::Sender<u64>,
    wait: Duration,
    fallback: OverlayEndpoints,
}

impl StaticEndpoints {
    pub fn new(wait: Duration) -> Arc<Self> {
        Arc::new(Self {
            map: Mutex::new(HashMap::new()),
            changed: watch::channel(0).0,
            wait,
            fallback: OverlayEndpoints::default(),
        })
    }

    pub fn insert(&self, uuid: impl Into<String>, endpoint: impl Into<String>) {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(uuid.into(), endpoint.into());
        self.changed.send_modify(|v| *v += 1);
    }

    fn get(&self, uuid: &str) -> Option<String> {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(uuid)
            .cloned()
    }
}

#[async_trait]
impl EndpointResolver for StaticEndpoints {
    async fn talos_endpoint(&self, uuid: &str, overlay: Ipv6Addr) -> String {
        let mut rx = self.changed.subscribe();
        let found = tokio::time::timeout(self.wait, async {
            loop {
                if let Some(e) = self.get(uuid) {
                    return Some(e);
                }
                if rx.changed().await.is_err() {
                    return None;
                }
            }
        })
        .await
        .ok()
        .flatten();
        match found {
            Some(e) => e,
            None => self.fallback.talos_endpoint(uuid, overlay).await,
        }
    }
}

/// The machine identity core stores next to the UUID: a hash of the per-node
/// unique token (which carries Talos's NIC fingerprint), or of the UUID alone
/// for machines that send none.
pub fn fingerprint(req: &ProvisionRequestInfo) -> String {
    let mut h = Sha256::new();
    if let Some(t) = req.node_unique_token.as_deref().filter(|t| !t.is_empty()) {
        h.update(b"unique-token\0");
        h.update(t.as_bytes());
    } else {
        h.update(b"uuid-only\0");
        h.update(req.node_uuid.as_bytes());
    }
    hex::encode(h.finalize())
}

/// The `ProvisionPolicy` over core: join tokens of organizations.
#[derive(Debug, Clone)]
pub struct CorePolicy {
    services: Services,
}

impl CorePolicy {
    pub fn new(services: Services) -> Self {
        Self { services }
    }
}

fn refusal(code: ErrorCode) -> Refusal {
    match code {
        ErrorCode::JoinTokenExpired => Refusal::ExpiredToken,
        ErrorCode::JoinTokenRevoked => Refusal::RevokedToken,
        ErrorCode::Unavailable | ErrorCode::Internal => Refusal::Unavailable,
        _ => Refusal::InvalidToken,
    }
}

#[async_trait]
impl ProvisionPolicy for CorePolicy {
    #[tracing::instrument(skip_all, fields(machine.uuid = %req.node_uuid))]
    async fn admit(&self, req: &ProvisionRequestInfo) -> Result<Admission, Refusal> {
        let token = req
            .join_token
            .as_deref()
            .filter(|t| !t.is_empty())
            .ok_or(Refusal::MissingToken)?;
        let rec = self.services.verify_join_token(token).await.map_err(|e| {
            tracing::info!(code = %e.code, "provisioning refused");
            refusal(e.code)
        })?;
        let fp = fingerprint(req);
        let known = self
            .services
            .store()
            .find_machines_by_uuid(&req.node_uuid)
            .await
            .map_err(|e| {
                tracing::error!(
                    error = &e as &dyn std::error::Error,
                    "machine lookup failed"
                );
                Refusal::Unavailable
            })?;
        if known
            .iter()
            .rev()
            .find(|m| m.fingerprint == fp)
            .is_some_and(|m| m.state == MachineState::NeedsWipe)
        {
            // Removed by force: refused until wiped (core says so again on admission).
            tracing::info!("provisioning refused: machine identity revoked");
            return Err(Refusal::RevokedToken);
        }
        Ok(Admission {
            token_id: Some(rec.id),
            bindings: BTreeMap::from([(BINDING_ORG.to_owned(), rec.org_id)]),
        })
    }
}

/// Admits one provisioned machine into core. Waits up to `facts_timeout`
/// for its Talos API to tell hostname and hardware; admits without them
/// otherwise.
#[tracing::instrument(skip_all, fields(machine.uuid = %p.request.node_uuid))]
pub(crate) async fn admit_provisioned(
    services: &Services,
    talos: &TalosClientOps,
    endpoints: &dyn EndpointResolver,
    links: &Links,
    p: ProvisionedMachine,
    facts_timeout: Duration,
) {
    let key = PublicKey::from_base64(&p.request.node_public_key).ok();
    let endpoint = endpoints
        .talos_endpoint(&p.request.node_uuid, p.node_address)
        .await;
    let facts = tokio::time::timeout(facts_timeout, async {
        loop {
            if let Some(f) = talos.facts(&endpoint).await {
                return f;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .ok();
    let (hostname, hardware) = facts.unwrap_or_default();
    let req = AdmitRequest {
        token: p.request.join_token.clone().unwrap_or_default(),
        uuid: p.request.node_uuid.clone(),
        fingerprint: fingerprint(&p.request),
        hostname,
        hardware,
        zone: String::new(),
        talos_endpoint: endpoint,
        overlay_address: p.node_address.to_string(),
        talos_version: p.request.talos_version.clone(),
    };
    match services.admit_machine(req).await {
        Ok(m) => {
            if let Some(k) = key {
                links.bind(&m.id, k);
                // Persisted, so that a restarted runtime answers the machine's
                // handshakes without it provisioning again.
                if let Err(e) = services
                    .record_machine_link(&m.id, &k.to_base64(), &m.uuid, &m.overlay_address)
                    .await
                {
                    tracing::warn!(machine.id = %m.id, error = %e, "could not record the machine's SideroLink peer");
                }
            }
            tracing::info!(machine.id = %m.id, org.id = %m.org_id, state = m.state.as_str(), "machine admitted through SideroLink");
        }
        Err(e) => {
            if let Some(k) = key {
                links.endpoint().remove_peer(PeerRef::Key(&k));
            }
            tracing::warn!(code = %e.code, error = %e.message, "provisioned machine not admitted");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(unique: Option<&str>) -> ProvisionRequestInfo {
        ProvisionRequestInfo {
            node_uuid: "u-1".into(),
            node_public_key: String::new(),
            join_token: None,
            node_unique_token: unique.map(str::to_owned),
            talos_version: None,
            wireguard_over_grpc: false,
            peer_addr: None,
        }
    }

    #[test]
    fn fingerprints_tell_unique_tokens_apart() {
        assert_ne!(fingerprint(&req(Some("a"))), fingerprint(&req(Some("b"))));
        assert_eq!(fingerprint(&req(None)), fingerprint(&req(Some(""))));
        assert_eq!(fingerprint(&req(None)).len(), 64);
    }

    #[tokio::test]
    async fn static_endpoints_wait_for_a_late_entry_and_fall_back_to_the_overlay() {
        let e = StaticEndpoints::new(Duration::from_millis(300));
        let overlay: Ipv6Addr = "fdae:41e4:649b:9303::2"
            .parse()
            .unwrap_or(Ipv6Addr::LOCALHOST);
        let late = e.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            late.insert("u-1", "127.0.0.1:4000");
        });
        assert_eq!(e.talos_endpoint("u-1", overlay).await, "127.0.0.1:4000");
        assert_eq!(
            e.talos_endpoint("u-2", overlay).await,
            "[fdae:41e4:649b:9303::2]:50000"
        );
    }
}
