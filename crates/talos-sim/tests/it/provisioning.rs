use std::time::Duration;

use talos_sim::{Fleet, ProvisionStatus, Stage, Timings};

use crate::support::{GOOD_TOKEN, Provisioner, Sink, serve_provisioner, serve_sink};

const T: Duration = Duration::from_secs(10);

#[tokio::test]
async fn machines_provision_with_their_own_uuid_and_join_token() {
    let p = Provisioner::default();
    let addr = serve_provisioner(p.clone()).await;
    let fleet = Fleet::builder()
        .machines(2)
        .siderolink_endpoint(format!("grpc://{addr}?jointoken={GOOD_TOKEN}"))
        .timings(Timings::fast())
        .start()
        .await
        .unwrap();
    for m in fleet.machines() {
        let st = m
            .wait_for_provision(|s| matches!(s, ProvisionStatus::Provisioned(_)), T)
            .await
            .unwrap();
        let ProvisionStatus::Provisioned(info) = st else {
            unreachable!()
        };
        assert!(info.node_address_prefix.ends_with("/64"));
        m.wait_for_stage(Stage::Running, T).await.unwrap();
    }
    let reqs = p.requests.lock().unwrap().clone();
    let mut uuids: Vec<_> = reqs.iter().map(|r| r.node_uuid.clone()).collect();
    uuids.sort();
    uuids.dedup();
    assert_eq!(uuids.len(), 2);
    assert!(
        reqs.iter()
            .all(|r| r.talos_version.as_deref() == Some("v1.13.0"))
    );
    assert!(
        reqs.iter().all(|r| base64_len(&r.node_public_key) == 32),
        "WireGuard keys are 32 bytes, base64"
    );
    fleet.stop().await;
}

fn base64_len(s: &str) -> usize {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_or(0, |v| v.len())
}

#[tokio::test]
async fn a_refused_machine_records_the_status_and_keeps_retrying() {
    let p = Provisioner::default();
    let addr = serve_provisioner(p.clone()).await;
    let fleet = Fleet::builder()
        .siderolink_endpoint(format!("grpc://{addr}"))
        .join_token("wrong")
        .timings(Timings::fast())
        .start()
        .await
        .unwrap();
    let m = fleet.machine(0);
    let st = m
        .wait_for_provision(|s| matches!(s, ProvisionStatus::Refused { .. }), T)
        .await
        .unwrap();
    assert!(matches!(
        st,
        ProvisionStatus::Refused {
            code: tonic::Code::PermissionDenied,
            ..
        }
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(p.requests.lock().unwrap().len() >= 2, "retries");
    fleet.stop().await;
}

#[tokio::test]
async fn duplicate_uuid_fault_sends_the_same_uuid_twice() {
    let p = Provisioner::default();
    let addr = serve_provisioner(p.clone()).await;
    let fleet = Fleet::builder()
        .machines(2)
        .duplicate_uuid(1, 0)
        .siderolink_endpoint(format!("grpc://{addr}?jointoken={GOOD_TOKEN}"))
        .timings(Timings::fast())
        .start()
        .await
        .unwrap();
    assert_eq!(fleet.machine(0).uuid(), fleet.machine(1).uuid());
    assert_ne!(fleet.machine(0).hostname(), fleet.machine(1).hostname());
    fleet.wait_for_stage(Stage::Running, T).await.unwrap();
    fleet.stop().await;
}

#[tokio::test]
async fn reboot_events_reach_the_sink_with_sink_type_urls() {
    let sink = Sink::default();
    let sink_addr = serve_sink(sink.clone()).await;
    let fleet = Fleet::builder()
        .event_sink(sink_addr.to_string())
        .timings(Timings::fast())
        .start()
        .await
        .unwrap();
    let m = fleet.machine(0);
    m.wait_for_stage(Stage::Running, T).await.unwrap();
    m.reboot();
    m.wait_for_stage(Stage::Rebooting, T).await.unwrap();
    m.wait_for_stage(Stage::Running, T).await.unwrap();
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let evs = sink.events.lock().unwrap().clone();
        let urls: Vec<_> = evs
            .iter()
            .filter_map(|e| e.data.as_ref().map(|d| d.type_url.clone()))
            .collect();
        let rebooting = evs.iter().any(|e| {
            e.data.as_ref().is_some_and(|d| {
                d.type_url == "type.googleapis.com/machine.SequenceEvent"
                    && String::from_utf8_lossy(&d.value).contains("reboot")
            })
        });
        let runs = urls
            .iter()
            .filter(|u| *u == "type.googleapis.com/machine.MachineStatusEvent")
            .count();
        if rebooting && runs >= 4 {
            assert!(
                urls.iter()
                    .all(|u| u.starts_with("type.googleapis.com/machine."))
            );
            let mut ids: Vec<_> = evs.iter().map(|e| e.id.clone()).collect();
            let n = ids.len();
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), n, "ids are unique");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "events: {urls:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    fleet.stop().await;
}

/// Waits for a WireGuard handshake initiation (type 1, 148 bytes) on `udp`.
async fn initiation_from(udp: &tokio::net::UdpSocket) -> std::net::SocketAddr {
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
async fn a_provisioned_machine_sends_its_wireguard_handshake_to_the_returned_endpoint() {
    let p = Provisioner::default();
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    *p.wireguard_endpoint.lock().unwrap() = Some(udp.local_addr().unwrap().to_string());
    let addr = serve_provisioner(p.clone()).await;
    let fleet = Fleet::builder()
        .siderolink_endpoint(format!("grpc://{addr}?jointoken={GOOD_TOKEN}"))
        .timings(Timings::fast())
        .start()
        .await
        .unwrap();
    let m = fleet.machine(0);
    let from = initiation_from(&udp).await;
    assert_eq!(from.ip(), m.management_ip());
    assert_eq!(Some(from), m.wireguard_local_addr());
    let sent = p.requests.lock().unwrap()[0].node_public_key.clone();
    assert_eq!(Some(sent), m.wireguard_public_key());
    fleet.stop().await;
}

#[tokio::test]
async fn link_drop_takes_the_api_and_wireguard_away_and_both_come_back_without_provisioning() {
    let p = Provisioner::default();
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    *p.wireguard_endpoint.lock().unwrap() = Some(udp.local_addr().unwrap().to_string());
    let addr = serve_provisioner(p.clone()).await;
    let fleet = Fleet::builder()
        .siderolink_endpoint(format!("grpc://{addr}?jointoken={GOOD_TOKEN}"))
        .timings(Timings::fast())
        .start()
        .await
        .unwrap();
    let m = fleet.machine(0);
    m.wait_for_provision(|s| matches!(s, ProvisionStatus::Provisioned(_)), T)
        .await
        .unwrap();
    m.wait_for_stage(Stage::Running, T).await.unwrap();
    let before = initiation_from(&udp).await;
    let requests = p.requests.lock().unwrap().len();
    m.drop_link(Duration::from_millis(1500));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    while tokio::net::TcpStream::connect(m.api_addr()).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "API unreachable while the link is down"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        m.wireguard_local_addr(),
        None,
        "no WireGuard peer while down"
    );
    // Back by itself: a new initiation from a new source port.
    let deadline = tokio::time::Instant::now() + T;
    let after = loop {
        let from = initiation_from(&udp).await;
        if from != before {
            break from;
        }
        assert!(tokio::time::Instant::now() < deadline);
    };
    assert_eq!(after.ip(), m.management_ip());
    let deadline = tokio::time::Instant::now() + T;
    while tokio::net::TcpStream::connect(m.api_addr()).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        p.requests.lock().unwrap().len(),
        requests,
        "not provisioned again"
    );
    assert_eq!(m.provisions(), 1);
    fleet.stop().await;
}

#[tokio::test]
async fn each_machine_has_its_own_management_address() {
    let fleet = Fleet::builder()
        .machines(3)
        .timings(Timings::fast())
        .start()
        .await
        .unwrap();
    let mut ips: Vec<_> = fleet
        .machines()
        .iter()
        .map(talos_sim::Machine::management_ip)
        .collect();
    ips.sort();
    ips.dedup();
    if cfg!(target_os = "linux") {
        assert_eq!(ips.len(), 3);
    }
    for m in fleet.machines() {
        assert_eq!(m.api_addr().ip(), m.management_ip());
        assert!(m.management_ip().is_loopback());
    }
    fleet.stop().await;
}

#[tokio::test]
async fn a_machine_whose_handshakes_go_unanswered_provisions_again() {
    let p = Provisioner::default();
    // Nobody answers on this socket.
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    *p.wireguard_endpoint.lock().unwrap() = Some(udp.local_addr().unwrap().to_string());
    let addr = serve_provisioner(p.clone()).await;
    let fleet = Fleet::builder()
        .siderolink_endpoint(format!("grpc://{addr}?jointoken={GOOD_TOKEN}"))
        .timings(Timings {
            wireguard_reprovision_after: Duration::from_millis(600),
            ..Timings::fast()
        })
        .start()
        .await
        .unwrap();
    let m = fleet.machine(0);
    let deadline = tokio::time::Instant::now() + T;
    while m.provisions() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never provisioned again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let reqs = p.requests.lock().unwrap().clone();
    assert!(reqs.len() >= 2);
    assert_eq!(
        reqs[0].node_public_key, reqs[1].node_public_key,
        "the same boot keeps its key"
    );
    assert_eq!(m.boots(), 1);
    fleet.stop().await;
}
