//! Handshakes the server initiates keep the link fresh, as in Talos: a
//! control plane restarted with its peers restored initiates towards each
//! machine, and the machine must not provision again meanwhile.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::BytesMut;
use gotatun::noise::index_table::IndexTable;
use gotatun::noise::rate_limiter::RateLimiter;
use gotatun::noise::{Tunn, TunnResult};
use gotatun::packet::{Packet, WgKind};
use gotatun::x25519::{PublicKey, StaticSecret};
use talos_sim::{Fleet, Timings};
use tokio::net::UdpSocket;

use crate::support::{GOOD_TOKEN, Provisioner, serve_provisioner};

const T: Duration = Duration::from_secs(10);

fn wire(kind: WgKind) -> Vec<u8> {
    let p: Packet = kind.into();
    p.to_vec()
}

/// The server side of a restored peer: it drops every initiation the machine
/// sends (so no handshake the machine initiates ever completes) and, while
/// `initiating`, initiates one itself every `every`, answering the machine's
/// response with a keepalive. Counts the handshakes it completed.
struct RestoredPeer {
    initiating: Arc<AtomicBool>,
    completed: Arc<AtomicU64>,
}

impl RestoredPeer {
    fn start(
        udp: UdpSocket,
        secret: StaticSecret,
        machine_key: &str,
        machine: SocketAddr,
        every: Duration,
    ) -> Self {
        let key = <[u8; 32]>::try_from(STANDARD.decode(machine_key).unwrap().as_slice()).unwrap();
        let limiter = Arc::new(RateLimiter::new(&PublicKey::from(&secret), 100));
        let mut tunn = Tunn::new(
            secret,
            PublicKey::from(key),
            None,
            None,
            IndexTable::from_os_rng(),
            limiter.clone(),
        );
        let initiating = Arc::new(AtomicBool::new(true));
        let completed = Arc::new(AtomicU64::new(0));
        let (on, done) = (initiating.clone(), completed.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            let mut buf = vec![0u8; 65_535];
            loop {
                let mut out = Vec::new();
                tokio::select! {
                    r = udp.recv_from(&mut buf) => {
                        let Ok((n, from)) = r else { return };
                        let packet = Packet::from_bytes(BytesMut::from(&buf[..n]));
                        let Ok(kind) = limiter.verify_packet(from, packet) else { continue };
                        if matches!(kind, WgKind::HandshakeInit(_)) {
                            continue;
                        }
                        let is_resp = matches!(kind, WgKind::HandshakeResp(_));
                        if let TunnResult::WriteToNetwork(p) = tunn.handle_incoming_packet(kind) {
                            if is_resp {
                                done.fetch_add(1, Ordering::SeqCst);
                            }
                            out.push(wire(p));
                        }
                    }
                    _ = tick.tick() => {
                        if on.load(Ordering::SeqCst)
                            && let Some(init) = tunn.format_handshake_initiation(true)
                        {
                            out.push(wire(init.into()));
                        }
                    }
                }
                for bytes in out {
                    let _ = udp.send_to(&bytes, machine).await;
                }
            }
        });
        Self {
            initiating,
            completed,
        }
    }
}

/// Waits for a WireGuard handshake initiation (type 1, 148 bytes) on `udp`.
async fn initiation_from(udp: &UdpSocket) -> SocketAddr {
    let mut buf = [0u8; 2048];
    loop {
        let (n, from) = tokio::time::timeout(T, udp.recv_from(&mut buf))
            .await
            .expect("a handshake initiation")
            .unwrap();
        if n == 148 && buf[0] == 1 {
            return from;
        }
    }
}

#[tokio::test]
async fn a_machine_whose_restored_peer_only_the_server_handshakes_does_not_provision_again() {
    let window = Duration::from_millis(600);
    let secret = StaticSecret::from([7u8; 32]);
    let p = Provisioner::default();
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    *p.wireguard_endpoint.lock().unwrap() = Some(udp.local_addr().unwrap().to_string());
    *p.wireguard_public_key.lock().unwrap() =
        Some(STANDARD.encode(PublicKey::from(&secret).as_bytes()));
    let addr = serve_provisioner(p.clone()).await;
    let fleet = Fleet::builder()
        .siderolink_endpoint(format!("grpc://{addr}?jointoken={GOOD_TOKEN}"))
        .timings(Timings {
            wireguard_reprovision_after: window,
            ..Timings::fast()
        })
        .start()
        .await
        .unwrap();
    let m = fleet.machine(0);
    let machine = initiation_from(&udp).await;
    let machine_key = p.requests.lock().unwrap()[0].node_public_key.clone();
    let server = RestoredPeer::start(
        udp,
        secret,
        &machine_key,
        machine,
        Duration::from_millis(150),
    );

    // Four windows with no handshake the machine initiated.
    tokio::time::sleep(window * 4).await;
    assert!(
        server.completed.load(Ordering::SeqCst) >= 4,
        "the server completed its handshakes"
    );
    assert!(m.wireguard_handshakes() >= 4, "the machine counted them");
    assert!(
        m.wireguard_handshake_age().is_some_and(|a| a < window),
        "age {:?}",
        m.wireguard_handshake_age()
    );
    assert_eq!(m.provisions(), 1, "not provisioned again");
    assert_eq!(p.requests.lock().unwrap().len(), 1);

    // Once the server stops too, the window applies as before.
    server.initiating.store(false, Ordering::SeqCst);
    let deadline = tokio::time::Instant::now() + T;
    while m.provisions() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never provisioned again without any handshake"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    fleet.stop().await;
}
