use std::collections::BTreeMap;
use std::net::{Ipv6Addr, SocketAddr};
use std::sync::Arc;

use chrono::Utc;
use satusky_machines::provision::{ProvisionFailure, endpoints_from_wire};
use satusky_machines::{
    JoinTokenKey, JoinTokenRegistry, OverlayPrefix, ProvisionRequestInfo, ProvisionServer,
    ProvisionServerConfig, ProvisionedMachine, Refusal, UniqueTokenPolicy,
};
use talos_sim::{Fleet, ProvisionStatus, Stage, Timings};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::support::T;

const INSTALLATION: &str = "satusky-test";

fn config() -> ProvisionServerConfig {
    ProvisionServerConfig {
        installation_id: INSTALLATION.into(),
        server_public_key: "c2VydmVyLWtleS1zZXJ2ZXIta2V5LXNlcnZlci1rZXk=".into(),
        wireguard_endpoints: vec!["127.0.0.1:50180".into(), "127.0.0.2:50180".into()],
    }
}

async fn start(
    registry: Arc<JoinTokenRegistry>,
) -> (SocketAddr, mpsc::Receiver<ProvisionedMachine>) {
    let (tx, rx) = mpsc::channel(16);
    let server = ProvisionServer::new(registry, config()).with_notifications(tx);
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(server.serve(l, std::future::pending()));
    (addr, rx)
}

async fn machine_with_token(addr: SocketAddr, token: &str) -> Fleet {
    Fleet::builder()
        .siderolink_endpoint(format!("grpc://{addr}"))
        .join_token(token)
        .timings(Timings::fast())
        .start()
        .await
        .unwrap()
}

async fn refusal_of(addr: SocketAddr, token: &str) -> (tonic::Code, String) {
    let fleet = machine_with_token(addr, token).await;
    let st = fleet
        .machine(0)
        .wait_for_provision(|s| matches!(s, ProvisionStatus::Refused { .. }), T)
        .await
        .unwrap();
    fleet.stop().await;
    match st {
        ProvisionStatus::Refused { code, message } => (code, message),
        other => panic!("not refused: {other:?}"),
    }
}

#[tokio::test]
async fn a_machine_with_a_valid_signed_token_is_provisioned_in_the_overlay_prefix() {
    let registry = Arc::new(JoinTokenRegistry::new());
    registry.create("default", None);
    let mut bindings = BTreeMap::new();
    bindings.insert("satusky.dev/pool".to_owned(), "edge".to_owned());
    let token = registry.issue("default", bindings, None).unwrap();
    let (addr, mut provisioned) = start(registry.clone()).await;

    let fleet = machine_with_token(addr, &token).await;
    let m = fleet.machine(0);
    let st = m
        .wait_for_provision(|s| matches!(s, ProvisionStatus::Provisioned(_)), T)
        .await
        .unwrap();
    let ProvisionStatus::Provisioned(info) = st else {
        unreachable!()
    };
    let prefix = OverlayPrefix::for_installation(INSTALLATION);
    let (node, len) = info.node_address_prefix.split_once('/').unwrap();
    assert_eq!(len, "64");
    let node: Ipv6Addr = node.parse().unwrap();
    assert!(prefix.contains(node));
    assert_eq!(info.server_address, prefix.server_address().to_string());
    // The preferred endpoint is last on the wire, for old clients.
    assert_eq!(info.server_endpoints.last().unwrap(), "127.0.0.1:50180");
    assert_eq!(
        endpoints_from_wire(&info.server_endpoints),
        config().wireguard_endpoints
    );

    let note = tokio::time::timeout(T, provisioned.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(note.request.node_uuid, m.uuid());
    assert_eq!(note.request.peer_addr.unwrap().ip(), m.management_ip());
    assert_eq!(note.node_address, node);
    assert_eq!(note.admission.token_id.as_deref(), Some("default"));
    assert_eq!(
        note.admission.bindings.get("satusky.dev/pool").unwrap(),
        "edge"
    );
    assert_eq!(registry.use_count("default"), Some(1));

    // Provisioning again after a reboot keeps the node address.
    m.wait_for_stage(Stage::Running, T).await.unwrap();
    m.reboot();
    m.wait_for_stage(Stage::Rebooting, T).await.unwrap();
    let again = tokio::time::timeout(T, provisioned.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.node_address, node);
    assert_ne!(
        again.request.node_public_key, note.request.node_public_key,
        "new key per boot"
    );
    fleet.stop().await;
}

#[tokio::test]
async fn a_wrong_token_is_refused_with_permission_denied() {
    let registry = Arc::new(JoinTokenRegistry::new());
    registry.create("default", None);
    let (addr, _rx) = start(registry).await;
    let forged = JoinTokenKey::generate().sign(&BTreeMap::new());
    assert_eq!(
        refusal_of(addr, &forged).await,
        (
            tonic::Code::PermissionDenied,
            "invalid join token".to_owned()
        )
    );
    assert_eq!(
        refusal_of(addr, "not-a-token").await.0,
        tonic::Code::PermissionDenied
    );
}

#[tokio::test]
async fn an_expired_token_is_refused_with_permission_denied() {
    let registry = Arc::new(JoinTokenRegistry::new());
    registry.create("default", None);
    let token = registry
        .issue(
            "default",
            BTreeMap::new(),
            Some(Utc::now() - chrono::Duration::minutes(1)),
        )
        .unwrap();
    let (addr, _rx) = start(registry).await;
    assert_eq!(
        refusal_of(addr, &token).await,
        (
            tonic::Code::PermissionDenied,
            "join token expired".to_owned()
        )
    );
}

#[tokio::test]
async fn a_revoked_token_is_refused_with_permission_denied() {
    let registry = Arc::new(JoinTokenRegistry::new());
    registry.create("default", None);
    let token = registry.issue("default", BTreeMap::new(), None).unwrap();
    registry.revoke("default").unwrap();
    let (addr, _rx) = start(registry).await;
    assert_eq!(
        refusal_of(addr, &token).await,
        (
            tonic::Code::PermissionDenied,
            "join token revoked".to_owned()
        )
    );
}

#[tokio::test]
async fn a_malformed_public_key_is_an_invalid_argument() {
    let registry = JoinTokenRegistry::new();
    let key = registry.create("default", None);
    let server = ProvisionServer::new(registry, config());
    let err = server
        .provision(ProvisionRequestInfo {
            node_uuid: "4c4c4544-0000-1000-8000-000000000001".into(),
            node_public_key: "not base64!".into(),
            join_token: Some(key.expose().to_owned()),
            node_unique_token: None,
            talos_version: None,
            wireguard_over_grpc: false,
            peer_addr: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(err, ProvisionFailure::InvalidArgument(_)));
    assert_eq!(
        tonic::Status::from(err).code(),
        tonic::Code::InvalidArgument
    );
    let missing = server
        .provision(ProvisionRequestInfo {
            node_uuid: "4c4c4544-0000-1000-8000-000000000001".into(),
            node_public_key: String::new(),
            join_token: None,
            node_unique_token: None,
            talos_version: None,
            wireguard_over_grpc: false,
            peer_addr: None,
        })
        .await
        .unwrap_err();
    assert_eq!(missing, ProvisionFailure::Refused(Refusal::MissingToken));
}

#[tokio::test]
async fn unique_tokens_keep_a_machine_in_after_revocation_and_refuse_a_duplicate_uuid() {
    let registry = Arc::new(JoinTokenRegistry::new());
    registry.create("default", None);
    let token = registry.issue("default", BTreeMap::new(), None).unwrap();
    let policy = Arc::new(UniqueTokenPolicy::new(registry.clone()));
    let (tx, mut provisioned) = mpsc::channel(16);
    let server = ProvisionServer::new(policy.clone(), config()).with_notifications(tx);
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(server.serve(l, std::future::pending()));

    let first = machine_with_token(addr, &token).await;
    let m = first.machine(0);
    m.wait_for_provision(|s| matches!(s, ProvisionStatus::Provisioned(_)), T)
        .await
        .unwrap();
    assert!(policy.recorded(m.uuid()).is_some());
    provisioned.recv().await.unwrap();

    // Revoking the join token does not lock out a machine with a unique token.
    registry.revoke("default").unwrap();
    m.wait_for_stage(Stage::Running, T).await.unwrap();
    m.reboot();
    let again = tokio::time::timeout(T, provisioned.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.request.node_uuid, m.uuid());

    // A second machine claiming the same UUID with other hardware is refused.
    registry.set_revoked("default", false).unwrap();
    let twin = Fleet::builder()
        .siderolink_endpoint(format!("grpc://{addr}"))
        .join_token(&token)
        .machine_spec(
            0,
            talos_sim::MachineSpec {
                uuid: Some(m.uuid().to_owned()),
                ..Default::default()
            },
        )
        .seed(99)
        .timings(Timings::fast())
        .start()
        .await
        .unwrap();
    let st = twin
        .machine(0)
        .wait_for_provision(|s| matches!(s, ProvisionStatus::Refused { .. }), T)
        .await
        .unwrap();
    assert!(
        matches!(
            st,
            ProvisionStatus::Refused {
                code: tonic::Code::AlreadyExists,
                ..
            }
        ),
        "{st:?}"
    );
    twin.stop().await;
    first.stop().await;
}
