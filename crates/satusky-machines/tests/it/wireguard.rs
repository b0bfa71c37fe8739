//! The SideroLink WireGuard endpoint against a userspace WireGuard client
//! (gotatun's `Tunn` over a loopback UDP socket), and end to end with talos-sim.

use std::net::{Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use gotatun::noise::index_table::IndexTable;
use gotatun::noise::rate_limiter::RateLimiter;
use gotatun::noise::{Tunn, TunnResult};
use gotatun::packet::{Packet, WgKind};
use gotatun::x25519::{PublicKey as XPublicKey, StaticSecret};
use satusky_machines::{
    JoinTokenRegistry, PeerConfig, ProvisionRequestInfo, ProvisionServer, ProvisionServerConfig,
    PublicKey, WireguardEndpoint, WireguardKey, WireguardSettings,
};
use talos_sim::{Fleet, ProvisionStatus, Timings};
use tokio::net::{TcpListener, UdpSocket};

use crate::support::T;

fn fast() -> WireguardSettings {
    WireguardSettings {
        keepalive: Duration::from_millis(200),
        down_after: Duration::from_millis(800),
        tick: Duration::from_millis(50),
        ..WireguardSettings::default()
    }
}

async fn endpoint() -> WireguardEndpoint {
    WireguardEndpoint::bind(
        "127.0.0.1:0".parse().unwrap(),
        WireguardKey::generate(),
        fast(),
    )
    .await
    .unwrap()
}

/// A node's side: one `Tunn` towards the server over its own UDP socket.
struct Client {
    key: WireguardKey,
    tunn: Box<Tunn>,
    socket: UdpSocket,
    server: SocketAddr,
    limiter: Arc<RateLimiter>,
}

impl Client {
    async fn new(server: &WireguardEndpoint) -> Self {
        Self::with_key(server, WireguardKey::generate()).await
    }

    async fn with_key(server: &WireguardEndpoint, key: WireguardKey) -> Self {
        let secret = StaticSecret::from(
            <[u8; 32]>::try_from(base64_decode(&key.to_base64()).as_slice()).unwrap(),
        );
        let public = XPublicKey::from(&secret);
        let limiter = Arc::new(RateLimiter::new(&public, 100));
        let tunn = Box::new(Tunn::new(
            secret,
            XPublicKey::from(*server.public_key().as_bytes()),
            None,
            None,
            IndexTable::from_os_rng(),
            limiter.clone(),
        ));
        Self {
            key,
            tunn,
            socket: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            server: server.local_addr(),
            limiter,
        }
    }

    fn public_key(&self) -> PublicKey {
        self.key.public_key()
    }

    fn peer(&self, uuid: &str) -> PeerConfig {
        PeerConfig {
            public_key: self.public_key(),
            uuid: uuid.to_owned(),
            unique_token: None,
            overlay_address: "fdae:41e4:649b:9303::10".parse::<Ipv6Addr>().unwrap(),
        }
    }

    async fn send(&self, kind: WgKind) {
        let p: Packet = kind.into();
        self.socket.send_to(&p, self.server).await.unwrap();
    }

    /// Sends an initiation and waits up to `wait` for the response; answers
    /// it with the keepalive that confirms the session. True on success.
    async fn handshake(&mut self, wait: Duration) -> bool {
        let init = self.tunn.format_handshake_initiation(true).unwrap();
        self.send(init.into()).await;
        let mut buf = vec![0u8; 2048];
        let Ok(Ok((n, from))) = tokio::time::timeout(wait, self.socket.recv_from(&mut buf)).await
        else {
            return false;
        };
        let packet = Packet::from_bytes(BytesMut::from(&buf[..n]));
        let Ok(kind) = self.limiter.verify_packet(from, packet) else {
            return false;
        };
        match self.tunn.handle_incoming_packet(kind) {
            TunnResult::WriteToNetwork(keepalive) => {
                self.send(keepalive).await;
                true
            }
            _ => false,
        }
    }

    async fn keepalive(&mut self) {
        let p = self
            .tunn
            .encapsulate_with_session(Packet::from_bytes(BytesMut::new()))
            .ok()
            .unwrap();
        self.send(p.into()).await;
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

async fn wait_until(what: &str, f: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + T;
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "never {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_admitted_peer_completes_a_handshake_over_loopback_udp() {
    let server = endpoint().await;
    let mut node = Client::new(&server).await;
    server.add_peer(node.peer("u-1"));
    assert!(!server.is_up("u-1"), "no handshake yet");

    assert!(node.handshake(T).await, "the server answers the initiation");
    wait_until("up", || server.is_up("u-1")).await;
    let link = server.link(&node.public_key()).unwrap();
    assert!(link.up);
    assert_eq!(link.handshakes, 1);
    assert!(link.last_handshake.is_some() && link.last_packet.is_some());
    assert_eq!(link.endpoint, Some(node.socket.local_addr().unwrap()));
    assert!(link.rx_bytes > 0 && link.tx_bytes > 0);

    // Keepalives keep it up past `down_after`; silence takes it down.
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        node.keepalive().await;
    }
    assert!(server.is_up("u-1"));
    wait_until("down after silence", || !server.is_up("u-1")).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_peer_that_roams_is_answered_at_its_new_address() {
    let server = endpoint().await;
    let mut node = Client::new(&server).await;
    server.add_peer(node.peer("u-1"));
    assert!(node.handshake(T).await);
    let first = node.socket.local_addr().unwrap();
    // A NAT rebinding: same session, new source port.
    node.socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    node.keepalive().await;
    let second = node.socket.local_addr().unwrap();
    assert_ne!(first, second);
    wait_until("the new endpoint", || {
        server.link("u-1").and_then(|l| l.endpoint) == Some(second)
    })
    .await;
    // And a new handshake from there is answered there.
    assert!(node.handshake(T).await);
    server.shutdown().await;
}

#[tokio::test]
async fn a_handshake_from_an_unknown_peer_is_ignored() {
    let server = endpoint().await;
    let mut stranger = Client::new(&server).await;
    assert!(!stranger.handshake(Duration::from_millis(500)).await);
    assert_eq!(server.ignored_handshakes(), 1);
    assert!(server.link(&stranger.public_key()).is_none());
    assert!(server.links().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn a_removed_peer_goes_down_and_its_handshakes_are_ignored() {
    let server = endpoint().await;
    let mut node = Client::new(&server).await;
    server.add_peer(node.peer("u-1"));
    assert!(node.handshake(T).await);
    wait_until("up", || server.is_up("u-1")).await;

    assert_eq!(server.remove_peer("u-1"), 1);
    assert!(!server.is_up("u-1"));
    assert!(server.link("u-1").is_none());
    // Its session is gone with it: data and new handshakes go unanswered.
    node.keepalive().await;
    assert!(!node.handshake(Duration::from_millis(500)).await);
    assert_eq!(server.ignored_handshakes(), 1);
    assert!(!server.is_up("u-1"));
    server.shutdown().await;
}

#[tokio::test]
async fn a_new_key_for_the_same_machine_replaces_the_old_peer_but_a_twin_does_not() {
    let server = endpoint().await;
    let old = Client::new(&server).await;
    server.add_peer(old.peer("u-1"));
    let rebooted = Client::new(&server).await;
    server.add_peer(rebooted.peer("u-1"));
    assert!(server.link(&old.public_key()).is_none());
    assert!(server.link(&rebooted.public_key()).is_some());

    let twin = Client::new(&server).await;
    server.add_peer(PeerConfig {
        unique_token: Some("other-hardware".into()),
        ..twin.peer("u-1")
    });
    assert_eq!(server.links().len(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn provisioning_answers_with_the_real_key_and_endpoint_and_admits_the_peer() {
    let server = endpoint().await;
    let registry = JoinTokenRegistry::new();
    let token = registry.create("default", None);
    let prov = ProvisionServer::new(
        registry,
        ProvisionServerConfig {
            installation_id: "wg-test".into(),
            server_public_key: String::new(),
            wireguard_endpoints: Vec::new(),
        },
    )
    .with_wireguard(server.clone());
    let mut node = Client::new(&server).await;
    let reply = prov
        .provision(ProvisionRequestInfo {
            node_uuid: "u-1".into(),
            node_public_key: node.public_key().to_base64(),
            join_token: Some(token.expose().to_owned()),
            node_unique_token: None,
            talos_version: None,
            wireguard_over_grpc: false,
            peer_addr: None,
        })
        .await
        .unwrap();
    assert_eq!(reply.server_public_key, server.public_key().to_base64());
    assert_eq!(
        reply.server_endpoints,
        vec![server.local_addr().to_string()]
    );
    let link = server.link("u-1").unwrap();
    assert_eq!(
        format!("{}/64", link.overlay_address),
        reply.node_address_prefix
    );
    assert!(node.handshake(T).await);
    wait_until("up", || server.is_up("u-1")).await;

    // A key that is not 32 bytes of base64 is refused before any peer exists.
    let short = prov
        .provision(ProvisionRequestInfo {
            node_uuid: "u-2".into(),
            node_public_key: "c2hvcnQ=".into(),
            join_token: Some(token.expose().to_owned()),
            node_unique_token: None,
            talos_version: None,
            wireguard_over_grpc: false,
            peer_addr: None,
        })
        .await
        .unwrap_err();
    assert_eq!(
        tonic::Status::from(short).code(),
        tonic::Code::InvalidArgument
    );
    assert!(server.link("u-2").is_none());
    server.shutdown().await;
}

#[tokio::test]
async fn a_simulated_machine_handshakes_with_the_endpoint_it_was_provisioned_with() {
    let server = endpoint().await;
    let registry = JoinTokenRegistry::new();
    let token = registry.create("default", None);
    let prov = ProvisionServer::new(
        registry,
        ProvisionServerConfig {
            installation_id: "wg-test".into(),
            server_public_key: String::new(),
            wireguard_endpoints: Vec::new(),
        },
    )
    .with_wireguard(server.clone());
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(prov.serve(l, std::future::pending()));
    let fleet = Fleet::builder()
        .siderolink_endpoint(format!("grpc://{addr}"))
        .join_token(token.expose())
        .timings(Timings {
            wireguard_keepalive: Duration::from_millis(200),
            ..Timings::fast()
        })
        .start()
        .await
        .unwrap();
    let m = fleet.machine(0);
    m.wait_for_provision(|s| matches!(s, ProvisionStatus::Provisioned(_)), T)
        .await
        .unwrap();
    wait_until("the machine's link up", || server.is_up(m.uuid())).await;
    let link = server.link(m.uuid()).unwrap();
    assert_eq!(
        Some(link.public_key.to_base64()),
        m.wireguard_public_key(),
        "the key the machine sent is the key that handshakes"
    );
    assert_eq!(link.endpoint.map(|e| e.ip()), Some(m.management_ip()));
    fleet.stop().await;
    server.shutdown().await;
}
