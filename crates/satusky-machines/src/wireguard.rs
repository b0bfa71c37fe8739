//! The control plane's userspace WireGuard endpoint for SideroLink.
//!
//! One UDP socket, one static server key (the caller generates and persists it,
//! see [`WireguardKey`]), and a peer table keyed by node public key. Only peers
//! that the provisioning server admitted ([`WireguardEndpoint::add_peer`]) are
//! answered: a handshake initiation from any other key is dropped and counted.
//!
//! Each peer runs gotatun's Noise_IK state machine ([`gotatun::noise::Tunn`]):
//! real handshakes, keepalives (the server sends its own persistent keepalive,
//! as the reference server configures 25 s on its peers) and WireGuard's timers
//! (`update_timers`). There is no tun device: decrypted packets other than
//! keepalives are counted and dropped, because Satusky does not route traffic
//! through the tunnel yet.
//!
//! Per peer the endpoint records the latest handshake, the last authenticated
//! packet and the peer's current UDP endpoint (it follows the peer when it
//! roams, e.g. a NAT rebinding: WireGuard answers the address the last
//! authenticated packet came from). [`WireguardEndpoint::link`] turns these
//! into a [`LinkState`] without touching the socket.
//!
//! The peer table lives in memory: the caller persists admitted peers and
//! re-admits them after a restart with [`WireguardEndpoint::restore_peer`],
//! which also initiates a handshake towards the peer's last endpoint (the
//! node's session died with the old process).
//!
//! **Link up** means: a handshake completed, it is younger than
//! [`WireguardSettings::handshake_max_age`], and an authenticated packet
//! (a keepalive at least) arrived within [`WireguardSettings::down_after`].
//! Both are needed: with keepalive-only traffic WireGuard re-handshakes only
//! every two to three minutes (a session is rejected after 180 s), so the
//! handshake age alone cannot see a link drop within a few keepalive periods,
//! while the keepalives alone do not prove the session is still keyed.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::BytesMut;
use gotatun::noise::handshake::parse_handshake_anon;
use gotatun::noise::index_table::IndexTable;
use gotatun::noise::rate_limiter::RateLimiter;
use gotatun::noise::{Tunn, TunnResult};
use gotatun::packet::{Packet, WgKind};
use gotatun::x25519::{PublicKey as XPublicKey, StaticSecret};
use rand::RngCore;
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// SideroLink's persistent keepalive (`siderolink` reference server and Talos).
pub const SIDEROLINK_KEEPALIVE: Duration = Duration::from_secs(25);

/// Handshake initiations accepted per source IP and second before WireGuard's
/// cookie (load) mechanism kicks in.
const HANDSHAKE_RATE_LIMIT: u64 = 100;

/// Receiver indices remembered per peer (gotatun keeps 8 sessions, plus the
/// handshake in flight).
const INDICES_PER_PEER: usize = 12;

/// A malformed WireGuard key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not base64.
    #[error("WireGuard key is not valid base64")]
    Base64,
    /// Not 32 bytes.
    #[error("WireGuard key must be 32 bytes, got {0}")]
    Length(usize),
}

fn decode_key(s: &str) -> Result<[u8; 32], KeyError> {
    let bytes = STANDARD.decode(s.trim()).map_err(|_| KeyError::Base64)?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| KeyError::Length(bytes.len()))
}

/// A WireGuard (x25519) public key. Its text form is base64, as in `wg` and in
/// SideroLink's `ProvisionRequest`/`ProvisionResponse`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// Parses base64 of 32 bytes.
    pub fn from_base64(s: &str) -> Result<Self, KeyError> {
        decode_key(s).map(Self)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Base64, as sent on the wire.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }
}

impl From<[u8; 32]> for PublicKey {
    fn from(b: [u8; 32]) -> Self {
        Self(b)
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        Self::from_base64(s)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_base64())
    }
}

/// A WireGuard static private key. `Debug` never shows it.
#[derive(Clone)]
pub struct WireguardKey([u8; 32]);

impl WireguardKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let mut b = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut b);
        Self(StaticSecret::from(b).to_bytes())
    }

    /// Parses base64 of 32 bytes (the `wg genkey` format).
    pub fn from_base64(s: &str) -> Result<Self, KeyError> {
        decode_key(s).map(|b| Self(StaticSecret::from(b).to_bytes()))
    }

    /// Base64 of the private key (the `wg genkey` format), for persisting it.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(XPublicKey::from(&self.secret()).to_bytes())
    }

    fn secret(&self) -> StaticSecret {
        StaticSecret::from(self.0)
    }
}

impl fmt::Debug for WireguardKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WireguardKey")
            .field("public", &self.public_key())
            .finish_non_exhaustive()
    }
}

/// Timings of the endpoint.
#[derive(Debug, Clone)]
pub struct WireguardSettings {
    /// The server's persistent keepalive towards each peer with a session.
    pub keepalive: Duration,
    /// A link is down once no authenticated packet arrived for this long
    /// (default: 3 × the 25 s SideroLink keepalive + 15 s).
    pub down_after: Duration,
    /// A link is down once its latest handshake is older than this (default
    /// 275 s: a keepalive-only session re-keys every 180 s at the latest; the
    /// reference and Talos use 275 s as well).
    pub handshake_max_age: Duration,
    /// How often WireGuard's timers run.
    pub tick: Duration,
}

impl Default for WireguardSettings {
    fn default() -> Self {
        Self {
            keepalive: SIDEROLINK_KEEPALIVE,
            down_after: SIDEROLINK_KEEPALIVE * 3 + Duration::from_secs(15),
            handshake_max_age: Duration::from_secs(275),
            tick: Duration::from_millis(250),
        }
    }
}

/// A peer the provisioning server admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    /// The node's WireGuard public key (Talos makes a new one every boot).
    pub public_key: PublicKey,
    /// The node's UUID.
    pub uuid: String,
    /// The node's unique token, if it sent one. A peer with the same UUID and
    /// token replaces the older one (the machine rebooted with a new key); a
    /// different token is a UUID twin and gets a peer of its own.
    pub unique_token: Option<String>,
    /// The node's overlay address (its AllowedIPs /128).
    pub overlay_address: Ipv6Addr,
}

/// Which peer to look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRef<'a> {
    /// By public key.
    Key(&'a PublicKey),
    /// By node UUID (the most recently heard peer with that UUID).
    Uuid(&'a str),
}

impl<'a> From<&'a PublicKey> for PeerRef<'a> {
    fn from(k: &'a PublicKey) -> Self {
        Self::Key(k)
    }
}

impl<'a> From<&'a str> for PeerRef<'a> {
    fn from(u: &'a str) -> Self {
        Self::Uuid(u)
    }
}

/// What the endpoint knows of one peer's link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkState {
    /// Handshake recent enough and packets flowing (see the module doc).
    pub up: bool,
    /// The peer's public key.
    pub public_key: PublicKey,
    /// The node UUID.
    pub uuid: String,
    /// The node's overlay address.
    pub overlay_address: Ipv6Addr,
    /// When the latest handshake completed.
    pub last_handshake: Option<SystemTime>,
    /// When the last authenticated packet (handshake or data) arrived.
    pub last_packet: Option<SystemTime>,
    /// Where the peer was last heard from.
    pub endpoint: Option<SocketAddr>,
    /// Completed handshakes.
    pub handshakes: u64,
    /// Bytes received from the peer (WireGuard packets).
    pub rx_bytes: u64,
    /// Bytes sent to the peer (WireGuard packets).
    pub tx_bytes: u64,
}

/// Failure of [`WireguardEndpoint::bind`].
#[derive(Debug, thiserror::Error)]
pub enum WireguardError {
    /// The UDP socket could not be bound.
    #[error("could not bind the WireGuard socket on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

struct Peer {
    config: PeerConfig,
    tunn: Tunn,
    endpoint: Option<SocketAddr>,
    /// A handshake initiation was answered; the first data packet confirms it.
    answered: bool,
    /// Restored with a known endpoint: the server initiates a handshake at
    /// its next timer tick (see [`WireguardEndpoint::restore_peer`]).
    initiate: bool,
    last_handshake: Option<(Instant, SystemTime)>,
    last_packet: Option<(Instant, SystemTime)>,
    last_sent: Option<Instant>,
    handshakes: u64,
    rx_bytes: u64,
    tx_bytes: u64,
    indices: VecDeque<u32>,
}

impl Peer {
    fn heard(&mut self, from: SocketAddr, n: usize) {
        let now = (Instant::now(), SystemTime::now());
        self.endpoint = Some(from);
        self.last_packet = Some(now);
        self.rx_bytes += n as u64;
    }

    fn handshake_done(&mut self) {
        self.answered = false;
        self.handshakes += 1;
        self.last_handshake = Some((Instant::now(), SystemTime::now()));
    }

    fn state(&self, s: &WireguardSettings) -> LinkState {
        let recent = |t: Option<(Instant, SystemTime)>, max: Duration| {
            t.is_some_and(|(at, _)| at.elapsed() <= max)
        };
        LinkState {
            up: recent(self.last_handshake, s.handshake_max_age)
                && recent(self.last_packet, s.down_after),
            public_key: self.config.public_key,
            uuid: self.config.uuid.clone(),
            overlay_address: self.config.overlay_address,
            last_handshake: self.last_handshake.map(|(_, t)| t),
            last_packet: self.last_packet.map(|(_, t)| t),
            endpoint: self.endpoint,
            handshakes: self.handshakes,
            rx_bytes: self.rx_bytes,
            tx_bytes: self.tx_bytes,
        }
    }
}

#[derive(Default)]
struct Table {
    peers: HashMap<PublicKey, Peer>,
    /// Our receiver index → the peer whose session or handshake uses it.
    by_index: HashMap<u32, PublicKey>,
}

impl Table {
    fn remember_index(&mut self, key: PublicKey, idx: u32) {
        let Some(p) = self.peers.get_mut(&key) else {
            return;
        };
        if p.indices.contains(&idx) {
            return;
        }
        p.indices.push_back(idx);
        if p.indices.len() > INDICES_PER_PEER
            && let Some(old) = p.indices.pop_front()
        {
            self.by_index.remove(&old);
        }
        self.by_index.insert(idx, key);
    }

    fn remove(&mut self, key: &PublicKey) -> Option<Peer> {
        let p = self.peers.remove(key)?;
        for i in &p.indices {
            self.by_index.remove(i);
        }
        Some(p)
    }

    fn find(&self, peer: PeerRef<'_>) -> Option<&Peer> {
        match peer {
            PeerRef::Key(k) => self.peers.get(k),
            PeerRef::Uuid(u) => self
                .peers
                .values()
                .filter(|p| p.config.uuid == u)
                .max_by_key(|p| p.last_packet.map(|(at, _)| at)),
        }
    }
}

struct Inner {
    key: WireguardKey,
    public: XPublicKey,
    settings: WireguardSettings,
    rate_limiter: Arc<RateLimiter>,
    index_table: IndexTable,
    table: Mutex<Table>,
    ignored: AtomicU64,
}

impl Inner {
    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The control plane's WireGuard endpoint. Cheap to clone; every clone shares
/// the socket and the peer table.
#[derive(Clone)]
pub struct WireguardEndpoint {
    inner: Arc<Inner>,
    local_addr: SocketAddr,
    stop: Arc<watch::Sender<bool>>,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl fmt::Debug for WireguardEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WireguardEndpoint")
            .field("local_addr", &self.local_addr)
            .field("public_key", &self.public_key())
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

/// One datagram to send once the table lock is released.
type Outgoing = Vec<(Vec<u8>, SocketAddr)>;

fn wire(kind: WgKind) -> Vec<u8> {
    let p: Packet = kind.into();
    p.to_vec()
}

impl WireguardEndpoint {
    /// Binds `addr` (port 0 picks one) and starts answering admitted peers.
    pub async fn bind(
        addr: SocketAddr,
        key: WireguardKey,
        settings: WireguardSettings,
    ) -> Result<Self, WireguardError> {
        let socket = UdpSocket::bind(addr)
            .await
            .map_err(|source| WireguardError::Bind { addr, source })?;
        let local_addr = socket
            .local_addr()
            .map_err(|source| WireguardError::Bind { addr, source })?;
        let public = XPublicKey::from(&key.secret());
        let inner = Arc::new(Inner {
            rate_limiter: Arc::new(RateLimiter::new(&public, HANDSHAKE_RATE_LIMIT)),
            index_table: IndexTable::from_os_rng(),
            key,
            public,
            settings,
            table: Mutex::new(Table::default()),
            ignored: AtomicU64::new(0),
        });
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run(inner.clone(), socket, stop_rx));
        tracing::info!(%local_addr, "WireGuard endpoint listening");
        Ok(Self {
            inner,
            local_addr,
            stop: Arc::new(stop),
            task: Arc::new(Mutex::new(Some(task))),
        })
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The server's public key.
    pub fn public_key(&self) -> PublicKey {
        self.inner.key.public_key()
    }

    /// The timings in force.
    pub fn settings(&self) -> &WireguardSettings {
        &self.inner.settings
    }

    /// Admits a peer. A peer with the same UUID and unique token (the same
    /// machine, rebooted with a new key) is replaced; the same key again keeps
    /// its session and updates its address.
    pub fn add_peer(&self, config: PeerConfig) {
        let mut t = self.inner.table();
        let stale: Vec<PublicKey> = t
            .peers
            .values()
            .filter(|p| {
                p.config.public_key != config.public_key
                    && p.config.uuid == config.uuid
                    && p.config.unique_token == config.unique_token
            })
            .map(|p| p.config.public_key)
            .collect();
        for k in stale {
            t.remove(&k);
        }
        self.insert_peer(&mut t, config);
    }

    /// Re-admits a peer known from before a restart (as the caller persisted
    /// it): no other peer is replaced. When `last_endpoint` is known and the
    /// peer has no session yet, the server initiates a handshake towards it
    /// (the machine's session died with the old process, and a node that only
    /// sends keepalives would not handshake again before its session expires);
    /// otherwise the peer's own next handshake is answered.
    pub fn restore_peer(&self, config: PeerConfig, last_endpoint: Option<SocketAddr>) {
        let key = config.public_key;
        let mut t = self.inner.table();
        self.insert_peer(&mut t, config);
        if let Some(to) = last_endpoint
            && let Some(p) = t.peers.get_mut(&key)
            && p.endpoint.is_none()
            && p.last_handshake.is_none()
        {
            p.endpoint = Some(to);
            p.initiate = true;
        }
    }

    fn insert_peer(&self, t: &mut Table, config: PeerConfig) {
        if let Some(p) = t.peers.get_mut(&config.public_key) {
            p.config = config;
            return;
        }
        let tunn = Tunn::new(
            self.inner.key.secret(),
            XPublicKey::from(*config.public_key.as_bytes()),
            None,
            None,
            self.inner.index_table.clone(),
            self.inner.rate_limiter.clone(),
        );
        tracing::debug!(machine.uuid = %config.uuid, peer = %config.public_key, "WireGuard peer added");
        t.peers.insert(
            config.public_key,
            Peer {
                config,
                tunn,
                endpoint: None,
                answered: false,
                initiate: false,
                last_handshake: None,
                last_packet: None,
                last_sent: None,
                handshakes: 0,
                rx_bytes: 0,
                tx_bytes: 0,
                indices: VecDeque::new(),
            },
        );
    }

    /// Forgets a peer (by key), or every peer of a UUID. Its handshakes are
    /// ignored from then on. Returns how many peers were removed.
    pub fn remove_peer<'a>(&self, peer: impl Into<PeerRef<'a>>) -> usize {
        let mut t = self.inner.table();
        let keys: Vec<PublicKey> = match peer.into() {
            PeerRef::Key(k) => vec![*k],
            PeerRef::Uuid(u) => t
                .peers
                .values()
                .filter(|p| p.config.uuid == u)
                .map(|p| p.config.public_key)
                .collect(),
        };
        let n = keys.iter().filter(|k| t.remove(k).is_some()).count();
        if n > 0 {
            tracing::debug!(peers = n, "WireGuard peer removed");
        }
        n
    }

    /// The link of a peer, or `None` for a peer the endpoint does not know
    /// (never admitted, or removed).
    pub fn link<'a>(&self, peer: impl Into<PeerRef<'a>>) -> Option<LinkState> {
        let t = self.inner.table();
        t.find(peer.into()).map(|p| p.state(&self.inner.settings))
    }

    /// Whether the peer's link is up (unknown peers are down).
    pub fn is_up<'a>(&self, peer: impl Into<PeerRef<'a>>) -> bool {
        self.link(peer).is_some_and(|l| l.up)
    }

    /// Every peer's link.
    pub fn links(&self) -> Vec<LinkState> {
        let t = self.inner.table();
        t.peers
            .values()
            .map(|p| p.state(&self.inner.settings))
            .collect()
    }

    /// Handshake initiations dropped because their key is not an admitted peer.
    pub fn ignored_handshakes(&self) -> u64 {
        self.inner.ignored.load(Ordering::Relaxed)
    }

    /// Stops serving and waits for the socket task.
    pub async fn shutdown(&self) {
        self.stop.send_replace(true);
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(t) = task {
            let _ = t.await;
        }
    }
}

async fn run(inner: Arc<Inner>, socket: UdpSocket, mut stop: watch::Receiver<bool>) {
    let mut buf = vec![0u8; 65_535];
    let mut tick = tokio::time::interval(inner.settings.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let out = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, from)) => receive(&inner, &buf[..n], from),
                Err(e) => {
                    // ICMP port unreachable and the like surface here on some
                    // systems; they say nothing about other peers.
                    tracing::debug!(error = %e, "WireGuard receive failed");
                    Vec::new()
                }
            },
            _ = tick.tick() => timers(&inner),
            _ = stop.wait_for(|s| *s) => return,
        };
        for (bytes, to) in out {
            if let Err(e) = socket.send_to(&bytes, to).await {
                tracing::debug!(error = %e, peer.endpoint = %to, "WireGuard send failed");
            }
        }
    }
}

/// Handles one datagram; returns what to send.
fn receive(inner: &Inner, datagram: &[u8], from: SocketAddr) -> Outgoing {
    let mut out = Vec::new();
    let n = datagram.len();
    let packet = Packet::from_bytes(BytesMut::from(datagram));
    let kind = match inner.rate_limiter.verify_packet(from, packet) {
        Ok(k) => k,
        Err(TunnResult::WriteToNetwork(cookie)) => {
            out.push((wire(cookie), from));
            return out;
        }
        Err(_) => return out,
    };
    let mut t = inner.table();
    let key = match &kind {
        WgKind::HandshakeInit(p) => {
            match parse_handshake_anon(&inner.key.secret(), &inner.public, p) {
                Ok(half) => PublicKey(half.peer_static_public),
                Err(_) => return out,
            }
        }
        WgKind::HandshakeResp(p) => match t.by_index.get(&p.receiver_idx.get()) {
            Some(k) => *k,
            None => return out,
        },
        WgKind::CookieReply(p) => match t.by_index.get(&p.receiver_idx.get()) {
            Some(k) => *k,
            None => return out,
        },
        WgKind::Data(p) => match t.by_index.get(&p.header.receiver_idx.get()) {
            Some(k) => *k,
            None => return out,
        },
    };
    if !t.peers.contains_key(&key) {
        if matches!(kind, WgKind::HandshakeInit(_)) {
            inner.ignored.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(peer = %key, %from, "handshake from a key that is no admitted peer ignored");
        }
        return out;
    }
    let is_init = matches!(kind, WgKind::HandshakeInit(_));
    let is_resp = matches!(kind, WgKind::HandshakeResp(_));
    let is_data = matches!(kind, WgKind::Data(_));
    let mut new_index = None;
    {
        let Some(peer) = t.peers.get_mut(&key) else {
            return out;
        };
        match peer.tunn.handle_incoming_packet(kind) {
            TunnResult::WriteToNetwork(reply) => {
                if let WgKind::HandshakeResp(r) = &reply {
                    new_index = Some(r.sender_idx.get());
                }
                peer.heard(from, n);
                if is_init {
                    peer.answered = true;
                }
                if is_resp {
                    peer.handshake_done();
                }
                let bytes = wire(reply);
                peer.tx_bytes += bytes.len() as u64;
                peer.last_sent = Some(Instant::now());
                out.push((bytes, from));
            }
            TunnResult::WriteToTunnel(_payload) => {
                // No tun device: a keepalive, or traffic we do not route.
                peer.heard(from, n);
                if is_data && peer.answered {
                    peer.handshake_done();
                }
            }
            TunnResult::Done => {}
            TunnResult::Err(e) => {
                tracing::trace!(peer = %key, error = ?e, "WireGuard packet rejected");
            }
        }
    }
    if let Some(idx) = new_index {
        t.remember_index(key, idx);
    }
    out
}

/// Runs every peer's timers and the server's persistent keepalive.
fn timers(inner: &Inner) -> Outgoing {
    let mut out = Vec::new();
    let mut t = inner.table();
    let mut new_indices = Vec::new();
    for (key, peer) in &mut t.peers {
        let Some(to) = peer.endpoint else { continue };
        let mut send = |peer: &mut Peer, kind: WgKind| {
            if let WgKind::HandshakeInit(p) = &kind {
                new_indices.push((*key, p.sender_idx.get()));
            }
            let bytes = wire(kind);
            peer.tx_bytes += bytes.len() as u64;
            peer.last_sent = Some(Instant::now());
            out.push((bytes, to));
        };
        if std::mem::take(&mut peer.initiate)
            && let Some(init) = peer.tunn.format_handshake_initiation(false)
        {
            send(peer, init.into());
        }
        if let Ok(Some(kind)) = peer.tunn.update_timers() {
            send(peer, kind);
        }
        let keepalive_due = peer
            .last_sent
            .is_none_or(|at| at.elapsed() >= inner.settings.keepalive);
        if keepalive_due
            && peer.last_handshake.is_some()
            && let Ok(p) = peer
                .tunn
                .encapsulate_with_session(Packet::from_bytes(BytesMut::new()))
        {
            send(peer, p.into());
        }
    }
    for (k, idx) in new_indices {
        t.remember_index(k, idx);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_base64_and_refuse_other_lengths() {
        let k = WireguardKey::generate();
        let again = WireguardKey::from_base64(&k.to_base64()).unwrap();
        assert_eq!(again.public_key(), k.public_key());
        let p = k.public_key();
        assert_eq!(PublicKey::from_base64(&p.to_base64()), Ok(p));
        assert_eq!(PublicKey::from_base64("c2hvcnQ="), Err(KeyError::Length(5)));
        assert_eq!(PublicKey::from_base64("not base64!"), Err(KeyError::Base64));
        assert!(!format!("{k:?}").contains(&k.to_base64()));
    }
}
