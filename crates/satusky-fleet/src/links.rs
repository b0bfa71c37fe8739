//! Machines' SideroLink links: the control plane's WireGuard endpoint
//! (satusky-machines) and which peer belongs to which machine record.
//!
//! The provisioning server adds a machine's peer before it answers; once core
//! admitted the machine, the runtime binds the record to the peer's key here.
//! A machine's link is then its peer's [`LinkState`] (handshake and keepalive
//! ages); [`Links::remove`] forgets the peer, after which the machine's
//! handshakes are ignored until it is admitted again.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use satusky_machines::{LinkState, PeerRef, PublicKey, WireguardEndpoint};

/// Cheap to clone; every clone shares the endpoint and the bindings.
#[derive(Debug, Clone)]
pub struct Links {
    wg: WireguardEndpoint,
    by_machine: Arc<Mutex<HashMap<String, PublicKey>>>,
}

impl Links {
    pub(crate) fn new(wg: WireguardEndpoint) -> Self {
        Self {
            wg,
            by_machine: Arc::default(),
        }
    }

    fn key_of(&self, machine_id: &str) -> Option<PublicKey> {
        self.by_machine
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(machine_id)
            .copied()
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

    /// Records that machine `machine_id` is the peer with `key`.
    pub(crate) fn bind(&self, machine_id: &str, key: PublicKey) {
        self.by_machine
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(machine_id.to_owned(), key);
    }

    /// The link of a machine: its bound peer, or else the latest peer with its
    /// UUID. `None`: no peer (never provisioned since the runtime started, or
    /// removed).
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
    /// handshakes are ignored until it is admitted again. Returns how many
    /// peers were removed.
    pub fn remove(&self, machine_id: &str, uuid: &str) -> usize {
        let key = self
            .by_machine
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(machine_id);
        let n = match key {
            Some(k) => self.wg.remove_peer(PeerRef::Key(&k)),
            None => self.wg.remove_peer(PeerRef::Uuid(uuid)),
        };
        tracing::info!(machine.id = %machine_id, peers = n, "SideroLink peer removed");
        n
    }
}
