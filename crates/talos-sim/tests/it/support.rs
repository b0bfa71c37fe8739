//! Shared fixtures: a tiny ProvisionService and sink written against the generated
//! servers (talos-sim must not depend on satusky-machines), and mTLS clients.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use satusky_proto::events::event_sink_service_server::{EventSinkService, EventSinkServiceServer};
use satusky_proto::events::{EventRequest, EventResponse};
use satusky_proto::machine::machine_service_client::MachineServiceClient;
use satusky_proto::sidero::link::provision_service_server::{
    ProvisionService, ProvisionServiceServer,
};
use satusky_proto::sidero::link::{ProvisionRequest, ProvisionResponse};
use talos_sim::{Fleet, Identity, Machine};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Request, Response, Status};

pub const GOOD_TOKEN: &str = "good-token";

#[derive(Clone, Default)]
pub struct Provisioner {
    pub requests: Arc<Mutex<Vec<ProvisionRequest>>>,
    /// The WireGuard endpoint handed out (default `127.0.0.1:51821`).
    pub wireguard_endpoint: Arc<Mutex<Option<String>>>,
    /// The server's WireGuard public key handed out (default: a key nobody holds).
    pub wireguard_public_key: Arc<Mutex<Option<String>>>,
}

#[tonic::async_trait]
impl ProvisionService for Provisioner {
    async fn provision(
        &self,
        req: Request<ProvisionRequest>,
    ) -> Result<Response<ProvisionResponse>, Status> {
        let r = req.into_inner();
        self.requests.lock().unwrap().push(r.clone());
        if r.join_token.as_deref() != Some(GOOD_TOKEN) {
            return Err(Status::permission_denied("invalid join token"));
        }
        Ok(Response::new(ProvisionResponse {
            server_endpoint: vec![
                self.wireguard_endpoint
                    .lock()
                    .unwrap()
                    .clone()
                    .unwrap_or_else(|| "127.0.0.1:51821".into()),
            ],
            server_public_key: self
                .wireguard_public_key
                .lock()
                .unwrap()
                .clone()
                .unwrap_or_else(|| "c2VydmVyLWtleS1zZXJ2ZXIta2V5LXNlcnZlci1rZXk=".into()),
            node_address_prefix: "fdae:41e4:649b:9303::10/64".into(),
            server_address: "fdae:41e4:649b:9303::1".into(),
            grpc_peer_addr_port: String::new(),
        }))
    }
}

#[derive(Clone, Default)]
pub struct Sink {
    pub events: Arc<Mutex<Vec<EventRequest>>>,
}

#[tonic::async_trait]
impl EventSinkService for Sink {
    async fn publish(&self, req: Request<EventRequest>) -> Result<Response<EventResponse>, Status> {
        self.events.lock().unwrap().push(req.into_inner());
        Ok(Response::new(EventResponse {}))
    }
}

pub async fn serve_provisioner(p: Provisioner) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(ProvisionServiceServer::new(p))
            .serve_with_incoming(TcpListenerStream::new(l)),
    );
    addr
}

pub async fn serve_sink(s: Sink) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(EventSinkServiceServer::new(s))
            .serve_with_incoming(TcpListenerStream::new(l)),
    );
    addr
}

pub fn channel(fleet: &Fleet, m: &Machine, id: &Identity) -> Channel {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(fleet.ca_pem()))
        .identity(tonic::transport::Identity::from_pem(
            &id.cert_pem,
            &id.key_pem,
        ));
    Endpoint::from_shared(format!("https://{}", m.api_addr()))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .timeout(std::time::Duration::from_secs(5))
        .connect_lazy()
}

pub fn admin(fleet: &Fleet, m: &Machine) -> MachineServiceClient<Channel> {
    MachineServiceClient::new(channel(fleet, m, fleet.admin_identity()))
}
