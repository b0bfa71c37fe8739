//! The machine's WireGuard peer towards the SideroLink server: gotatun's
//! Noise_IK state machine (`Tunn`) over a UDP socket, as Talos configures its
//! `siderolink` interface: the server as the only peer, a persistent keepalive
//! (25 s in Talos, [`crate::Timings::wireguard_keepalive`] here), and
//! WireGuard's own timers for retransmits and re-keying.
//!
//! Only the link itself is simulated. The Talos API, the event sink and the
//! kernel log keep their loopback addresses and are **not** tunnelled (there
//! is no userspace TCP/IP stack): decrypted packets would be dropped, and the
//! machine sends keepalives only.
//!
//! A simulated machine dials only loopback WireGuard endpoints: it is a test
//! and development tool, and any other address is logged and left alone.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::BytesMut;
use gotatun::noise::index_table::IndexTable;
use gotatun::noise::rate_limiter::RateLimiter;
use gotatun::noise::{Tunn, TunnResult};
use gotatun::packet::{Packet, WgKind};
use gotatun::x25519::{PublicKey, StaticSecret};
use rand::Rng;
use tokio::net::UdpSocket;
use tokio::sync::watch;

use crate::machine::{Machine, Shared};

/// The machine's WireGuard key of one boot (Talos makes a new one every boot).
#[derive(Clone)]
pub(crate) struct BootKey {
    secret: [u8; 32],
}

impl std::fmt::Debug for BootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootKey")
            .field("public", &self.public_base64())
            .finish_non_exhaustive()
    }
}

impl BootKey {
    pub fn generate() -> Self {
        let secret = StaticSecret::from(rand::thread_rng().r#gen::<[u8; 32]>()).to_bytes();
        Self { secret }
    }

    fn static_secret(&self) -> StaticSecret {
        StaticSecret::from(self.secret)
    }

    pub fn public_base64(&self) -> String {
        STANDARD.encode(PublicKey::from(&self.static_secret()).as_bytes())
    }
}

/// What the link has done, for tests and `Machine` accessors.
#[derive(Debug, Default)]
pub(crate) struct LinkStats {
    inner: Mutex<LinkStatsInner>,
}

#[derive(Debug, Default, Clone)]
struct LinkStatsInner {
    public_key: Option<String>,
    provisions: u64,
    handshakes: u64,
    last_handshake: Option<Instant>,
    local_addr: Option<SocketAddr>,
}

impl LinkStats {
    fn with<R>(&self, f: impl FnOnce(&mut LinkStatsInner) -> R) -> R {
        f(&mut self.inner.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn booted(&self, key: &BootKey) {
        self.with(|s| {
            s.public_key = Some(key.public_base64());
            s.last_handshake = None;
            s.local_addr = None;
        });
    }

    pub fn provisioned(&self) {
        self.with(|s| s.provisions += 1);
    }
}

impl Machine {
    /// The WireGuard public key of this boot (base64), once booted.
    pub fn wireguard_public_key(&self) -> Option<String> {
        self.shared.wireguard.with(|s| s.public_key.clone())
    }

    /// Successful `Provision` calls since the fleet started.
    pub fn provisions(&self) -> u64 {
        self.shared.wireguard.with(|s| s.provisions)
    }

    /// Completed WireGuard handshakes since the fleet started, whichever side
    /// initiated them.
    pub fn wireguard_handshakes(&self) -> u64 {
        self.shared.wireguard.with(|s| s.handshakes)
    }

    /// Time since the latest completed WireGuard handshake of this boot.
    pub fn wireguard_handshake_age(&self) -> Option<Duration> {
        self.shared
            .wireguard
            .with(|s| s.last_handshake.map(|t| t.elapsed()))
    }

    /// The UDP address the WireGuard peer sends from, while it runs.
    pub fn wireguard_local_addr(&self) -> Option<SocketAddr> {
        self.shared.wireguard.with(|s| s.local_addr)
    }
}

/// The first usable endpoint of a `ProvisionResponse` (the wire order puts the
/// most preferred endpoint last, `GetEndpoints` swaps it back).
pub(crate) async fn pick_endpoint(wire: &[String]) -> Option<SocketAddr> {
    let mut v = wire.to_vec();
    if v.len() > 1 {
        let last = v.len() - 1;
        v.swap(0, last);
    }
    for e in v {
        let Ok(mut addrs) = tokio::net::lookup_host(e.as_str()).await else {
            continue;
        };
        if let Some(a) = addrs.find(|a| a.ip().is_loopback()) {
            return Some(a);
        }
        tracing::debug!(endpoint = %e, "simulated machines dial only loopback WireGuard endpoints");
    }
    None
}

fn parse_key(b64: &str) -> Option<PublicKey> {
    let bytes = STANDARD.decode(b64).ok()?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .ok()
        .map(PublicKey::from)
}

async fn bind(source: Option<IpAddr>, server: SocketAddr) -> std::io::Result<UdpSocket> {
    let ip = match source {
        Some(ip) if ip.is_ipv4() == server.is_ipv4() => ip,
        _ if server.is_ipv4() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        _ => IpAddr::V6(Ipv6Addr::LOCALHOST),
    };
    UdpSocket::bind(SocketAddr::new(ip, 0)).await
}

fn wire(kind: WgKind) -> Vec<u8> {
    let p: Packet = kind.into();
    p.to_vec()
}

/// Records a completed handshake, whichever side initiated it.
fn handshake_completed(shared: &Shared) {
    shared.wireguard.with(|s| {
        s.handshakes += 1;
        s.last_handshake = Some(Instant::now());
    });
}

/// Handles one datagram from the server. A handshake completes, as in the
/// kernel's WireGuard that Talos reads `LastHandshakeTime` from, either when
/// the machine initiated it and receives the response, or when the server
/// initiated it and the machine, having responded, receives the first data
/// packet (a keepalive) of that new session: `responded` holds the machine's
/// index of the session it responded to until then.
fn receive(
    shared: &Shared,
    tunn: &mut Tunn,
    limiter: &RateLimiter,
    datagram: &[u8],
    from: SocketAddr,
    responded: &mut Option<u32>,
    out: &mut Vec<Vec<u8>>,
) {
    let packet = Packet::from_bytes(BytesMut::from(datagram));
    let kind = match limiter.verify_packet(from, packet) {
        Ok(k) => k,
        Err(TunnResult::WriteToNetwork(cookie)) => {
            out.push(wire(cookie));
            return;
        }
        Err(_) => return,
    };
    let is_resp = matches!(kind, WgKind::HandshakeResp(_));
    let data_for = match &kind {
        WgKind::Data(d) => Some(d.header.receiver_idx.get()),
        _ => None,
    };
    match tunn.handle_incoming_packet(kind) {
        TunnResult::WriteToNetwork(p) => {
            if is_resp {
                handshake_completed(shared);
            }
            if let WgKind::HandshakeResp(r) = &p {
                *responded = Some(r.sender_idx.get());
            }
            out.push(wire(p));
        }
        TunnResult::WriteToTunnel(_) => {
            if data_for.is_some() && data_for == *responded {
                *responded = None;
                handshake_completed(shared);
            }
        }
        TunnResult::Done | TunnResult::Err(_) => {}
    }
}

/// Why [`run_peer`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PeerEnd {
    /// Told to stop, or could not start.
    Stopped,
    /// No handshake completed for `Timings::wireguard_reprovision_after`: the
    /// machine provisions again, as Talos does.
    Stale,
}

/// Runs the peer until `stop` flips: an initiation at once, keepalives every
/// `keepalive`, WireGuard's timers (retransmits, re-keying) in between. Gives
/// up ([`PeerEnd::Stale`]) when no handshake completed for
/// `Timings::wireguard_reprovision_after`; handshakes the server initiates
/// (as it does towards restored peers after a restart) count as Talos counts
/// them.
pub(crate) async fn run_peer(
    shared: Arc<Shared>,
    key: BootKey,
    server_key: String,
    server: SocketAddr,
    mut stop: watch::Receiver<bool>,
) -> PeerEnd {
    let Some(server_public) = parse_key(&server_key) else {
        tracing::warn!(machine.id = %shared.uuid, "the SideroLink server sent no valid WireGuard key");
        return PeerEnd::Stopped;
    };
    let socket = match bind(shared.source_ip, server).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(machine.id = %shared.uuid, error = %e, "could not bind the WireGuard socket");
            return PeerEnd::Stopped;
        }
    };
    let local = socket.local_addr().ok();
    shared.wireguard.with(|s| s.local_addr = local);
    let secret = key.static_secret();
    let limiter = Arc::new(RateLimiter::new(&PublicKey::from(&secret), 100));
    let mut tunn = Tunn::new(
        secret,
        server_public,
        None,
        None,
        IndexTable::from_os_rng(),
        limiter.clone(),
    );
    let keepalive = shared.config.timings.wireguard_keepalive;
    let reprovision_after = shared.config.timings.wireguard_reprovision_after;
    let started = Instant::now();
    let mut end = PeerEnd::Stopped;
    let mut ticks = tokio::time::interval(
        (keepalive / 4).clamp(Duration::from_millis(20), Duration::from_millis(250)),
    );
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_sent: Option<Instant> = None;
    let mut responded: Option<u32> = None;
    let mut buf = vec![0u8; 65_535];
    loop {
        let mut out: Vec<Vec<u8>> = Vec::new();
        tokio::select! {
            r = socket.recv_from(&mut buf) => {
                if let Ok((n, from)) = r
                    && from == server
                {
                    receive(&shared, &mut tunn, &limiter, &buf[..n], from, &mut responded, &mut out);
                }
            }
            _ = ticks.tick() => {
                let since = shared.wireguard.with(|s| s.last_handshake).map_or(started, |t| t.max(started));
                if since.elapsed() >= reprovision_after {
                    tracing::info!(machine.id = %shared.uuid, "no WireGuard handshake for too long; provisioning again");
                    end = PeerEnd::Stale;
                    break;
                }
                if let Ok(Some(p)) = tunn.update_timers() {
                    out.push(wire(p));
                }
                if last_sent.is_none_or(|t| t.elapsed() >= keepalive) {
                    // Persistent keepalive; without a session, a handshake.
                    match tunn.encapsulate_with_session(Packet::from_bytes(BytesMut::new())) {
                        Ok(p) => out.push(wire(p.into())),
                        Err(_) => {
                            if let Some(init) = tunn.format_handshake_initiation(false) {
                                out.push(wire(init.into()));
                            }
                        }
                    }
                }
            }
            _ = stop.wait_for(|s| *s) => break,
        }
        for bytes in out {
            if socket.send_to(&bytes, server).await.is_ok() {
                last_sent = Some(Instant::now());
            }
        }
    }
    shared.wireguard.with(|s| s.local_addr = None);
    end
}
