use std::net::SocketAddr;
use std::time::Duration;

use satusky_machines::{EventSinkServer, SinkEvent, TalosClient, TalosClientConfig};
use talos_sim::{Fleet, Machine};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

pub const T: Duration = Duration::from_secs(10);

pub async fn start_sink() -> (SocketAddr, mpsc::Receiver<SinkEvent>) {
    let (tx, rx) = mpsc::channel(1024);
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(EventSinkServer::new(tx).serve(l, std::future::pending()));
    (addr, rx)
}

pub fn client_config(fleet: &Fleet, m: &Machine) -> TalosClientConfig {
    let id = fleet.admin_identity();
    TalosClientConfig::new(
        m.api_addr().to_string(),
        fleet.ca_pem(),
        &id.cert_pem,
        &id.key_pem,
    )
    .rpc_timeout(Duration::from_secs(5))
}

pub fn client(fleet: &Fleet, m: &Machine) -> TalosClient {
    TalosClient::connect(&client_config(fleet, m)).unwrap()
}
