//! Machines' SideroLink links: the control plane's WireGuard endpoint
//! (satusky-machines) and which peer belongs to which machine record.
//!
//! The provisioning server adds a machine's peer before it answers; once core
//! admitted the machine, the runtime binds the record to the peer's key here
//! and records the peer in the store (`Services::record_machine_link`). A
//! machine's link is then its peer's [`LinkState`] (handshake and keepalive
//! ages); the link pass records where the peer is heard from.
//!
//! The peer table of the endpoint lives in memory, so when the runtime starts
//! it restores the stored peers of live machines ([`Links::restore`]): their
//! next handshake is answered without provisioning again, and the server
//! initiates one towards the peer's last endpoint. [`Links::remove`] forgets a
//! peer, in the endpoint and in the store: the machine's handshakes are
//! ignored until it is admitted again, also after a restart.

use std::collections::HashMap;
use std::net::{Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use satusky_core::services::Services;
use satusky_core::store::MachineLinkRecord;
use satusky_machines::{LinkState, PeerConfig, PeerRef, PublicKey, WireguardEndpoint};
use tokio::task::JoinHandle;

/// The peer a machine record is bound to.
#[derive(Debug, Clone, Copy)]
struct Bound {
    key: PublicKey,
    /// The endpoint last written to the store for this key.
    saved_endpoint: Option<SocketAddr>,
}

/// Cheap to clone; every clone shares the endpoint and the bindings.
#[derive(Debug, Clone)]
pub struct Links {
    wg: WireguardEndpoint,
    services: Services,
    by_machine: Arc<Mutex<HashMap<String, Bound>>>,
    /// Store deletions started by [`Links::remove`], awaited on shutdown.
    forgets: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Links {
    pub(crate) fn new(wg: WireguardEndpoint, services: Services) -> Self {
        Self {
            wg,
            services,
            by_machine: Arc::default(),
            forgets: Arc::default(),
        }
    }

    fn bindings(&self) -> std::sync::MutexGuard<'_, HashMap<String, Bound>> {
        self.by_machine
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn key_of(&self, machine_id: &str) -> Option<PublicKey> {
        self.bindings().get(machine_id).map(|b| b.key)
    }

    /// The WireGuard endpoint itself.
    pub fn endpoint(&self) -> &WireguardEndpoint {
        &self.wg
    }

    /// The server's WireGuard public key.
    pub fn public_key(&self) -> PublicKey {
        self.wg.public_key()
    }

    /// The bound UDP address of the WireGuard endpoint.
    pub fn local_addr(&self) -> SocketAddr {
        self.wg.local_addr()
    }

    /// Records that machine `machine_id` is the peer with `key`. A peer the
    /// machine was bound to before under another key (restored after a
    /// restart, or an earlier boot) is removed from the endpoint.
    pub(crate) fn bind(&self, machine_id: &str, key: PublicKey) {
        let before = self.bindings().insert(
            machine_id.to_owned(),
            Bound {
                key,
                saved_endpoint: None,
            },
        );
        if let Some(old) = before.filter(|b| b.key != key) {
            self.wg.remove_peer(PeerRef::Key(&old.key));
        }
    }

    /// Restores stored peers (of live machines) into the endpoint and binds
    /// them to their machines; returns how many. A record whose key or
    /// address does not parse is skipped.
    pub(crate) fn restore(&self, stored: &[MachineLinkRecord]) -> usize {
        let mut n = 0;
        for rec in stored {
            let (Ok(key), Ok(overlay_address)) = (
                PublicKey::from_base64(&rec.public_key),
                rec.overlay_address.parse::<Ipv6Addr>(),
            ) else {
                tracing::warn!(machine.id = %rec.machine_id, "stored SideroLink peer unreadable; skipped");
                continue;
            };
            let last = rec
                .last_endpoint
                .as_deref()
                .and_then(|e| e.parse::<SocketAddr>().ok());
            self.wg.restore_peer(
                PeerConfig {
                    public_key: key,
                    uuid: rec.uuid.clone(),
                    unique_token: None,
                    overlay_address,
                },
                last,
            );
            self.bindings().insert(
                rec.machine_id.clone(),
                Bound {
                    key,
                    saved_endpoint: last,
                },
            );
            n += 1;
        }
        n
    }

    /// The machine's peer key and endpoint when the endpoint it is heard
    /// from is not the one last written to the store.
    pub(crate) fn endpoint_to_save(&self, machine_id: &str) -> Option<(PublicKey, SocketAddr)> {
        let bound = self.bindings().get(machine_id).copied()?;
        let now = self.wg.link(PeerRef::Key(&bound.key))?.endpoint?;
        (bound.saved_endpoint != Some(now)).then_some((bound.key, now))
    }

    /// Whether the machine is bound to the peer with `key`.
    pub(crate) fn is_bound(&self, machine_id: &str, key: PublicKey) -> bool {
        self.key_of(machine_id) == Some(key)
    }

    /// Notes that `endpoint` of the machine's peer `key` is in the store.
    pub(crate) fn endpoint_saved(&self, machine_id: &str, key: PublicKey, endpoint: SocketAddr) {
        if let Some(b) = self.bindings().get_mut(machine_id).filter(|b| b.key == key) {
            b.saved_endpoint = Some(endpoint);
        }
    }

    /// The link of a machine: its bound peer, or else the latest peer with its
    /// UUID. `None`: no peer (never provisioned, or removed).
    pub fn link(&self, machine_id: &str, uuid: &str) -> Option<LinkState> {
        match self.key_of(machine_id) {
            Some(k) => self.wg.link(PeerRef::Key(&k)),
            None => self.wg.link(PeerRef::Uuid(uuid)),
        }
    }

    /// Whether the machine's link is up.
    pub fn is_up(&self, machine_id: &str, uuid: &str) -> bool {
        self.link(machine_id, uuid).is_some_and(|l| l.up)
    }

    /// Forgets the machine's WireGuard peer (its bound key; without one,
    /// every peer with its UUID): the link goes down and the machine's
    /// handshakes are ignored until it is admitted again. The stored peer is
    /// deleted too (in a task; [`Links::settle`] waits for it), so a restart
    /// does not restore it. Returns how many peers were removed.
    pub fn remove(&self, machine_id: &str, uuid: &str) -> usize {
        let key = self.bindings().remove(machine_id).map(|b| b.key);
        let n = match key {
            Some(k) => self.wg.remove_peer(PeerRef::Key(&k)),
            None => self.wg.remove_peer(PeerRef::Uuid(uuid)),
        };
        tracing::info!(machine.id = %machine_id, peers = n, "SideroLink peer removed");
        self.forget_stored(machine_id, key);
        n
    }

    fn forget_stored(&self, machine_id: &str, key: Option<PublicKey>) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(machine.id = %machine_id, "no runtime: the stored SideroLink peer stays (not restored once the machine is not live)");
            return;
        };
        let (services, id) = (self.services.clone(), machine_id.to_owned());
        let task = rt.spawn(async move {
            let key = key.map(|k| k.to_base64());
            if let Err(e) = services.forget_machine_link(&id, key.as_deref()).await {
                tracing::warn!(machine.id = %id, error = %e, "could not forget the stored SideroLink peer");
            }
        });
        let mut forgets = self.forgets.lock().unwrap_or_else(PoisonError::into_inner);
        forgets.retain(|t| !t.is_finished());
        forgets.push(task);
    }

    /// Waits until the stored peers [`Links::remove`] forgot are deleted.
    pub async fn settle(&self) {
        let tasks: Vec<_> = self
            .forgets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .collect();
        for t in tasks {
            let _ = t.await;
        }
    }
}
