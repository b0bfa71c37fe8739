//! The SideroLink `sidero.link.ProvisionService/Provision` server.
//!
//! Steps, as in the reference server: admit the request through a
//! [`ProvisionPolicy`] (join token, unique token, limits), check the node's WireGuard
//! public key, allocate (or reuse) the node's overlay address, and answer with the
//! WireGuard endpoints, the server key and addresses. Refusals map to the gRPC codes
//! Talos and Omni use (see [`Refusal::code`]).
//!
//! With a [`WireguardEndpoint`] attached ([`ProvisionServer::with_wireguard`]),
//! the answer carries that endpoint's real public key and address, and every
//! admitted machine becomes one of its peers before the answer leaves, so the
//! machine's first handshake is answered. Callers also receive a
//! [`ProvisionedMachine`] notification.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use satusky_proto::sidero::link::{
    ProvisionRequest, ProvisionResponse,
    provision_service_server::{ProvisionService, ProvisionServiceServer},
};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Code, Request, Response, Status};

use crate::overlay::{AddressAllocator, OverlayPrefix};
use crate::wireguard::{PeerConfig, PublicKey, WireguardEndpoint};

/// A provisioning request, as plain Rust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionRequestInfo {
    /// SMBIOS UUID or META override.
    pub node_uuid: String,
    /// WireGuard public key, base64.
    pub node_public_key: String,
    /// The join token, if the machine sent one.
    pub join_token: Option<String>,
    /// The per-node unique token persisted in META, if any.
    pub node_unique_token: Option<String>,
    /// Talos version, e.g. `v1.13.0`.
    pub talos_version: Option<String>,
    /// Whether the machine asked for WireGuard over gRPC.
    pub wireguard_over_grpc: bool,
    /// The gRPC peer address of the call.
    pub peer_addr: Option<SocketAddr>,
}

/// A machine the policy let in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Admission {
    /// The join token that admitted it, if tokens are named.
    pub token_id: Option<String>,
    /// Bindings carried by the token (tenant, pool, machine request, …).
    pub bindings: BTreeMap<String, String>,
}

/// Why a machine was refused. Each maps to one gRPC code ([`Refusal::code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No join token was sent. `PermissionDenied`.
    #[error("join token required")]
    MissingToken,
    /// The token matches no key or its signature fails. `PermissionDenied`.
    #[error("invalid join token")]
    InvalidToken,
    /// The token or its key has expired. `PermissionDenied`.
    #[error("join token expired")]
    ExpiredToken,
    /// The token's key has been revoked. `PermissionDenied`.
    #[error("join token revoked")]
    RevokedToken,
    /// Same hardware fingerprint, different unique token. `PermissionDenied`.
    #[error("node unique token mismatch")]
    UniqueTokenMismatch,
    /// The UUID is registered with different hardware. `AlreadyExists`; the machine
    /// that was there first keeps its registration.
    #[error("machine UUID already registered with different hardware")]
    UuidConflict,
    /// Strict token mode and a Talos too old for unique tokens. `FailedPrecondition`.
    #[error("Talos version too old for unique tokens")]
    TalosTooOld,
    /// The registration limit is reached. `ResourceExhausted`.
    #[error("machine registration limit reached")]
    LimitReached,
    /// The policy could not decide (e.g. its store is down). `Unavailable`.
    #[error("provisioning temporarily unavailable")]
    Unavailable,
}

impl Refusal {
    /// The gRPC status code sent to the machine.
    pub fn code(&self) -> Code {
        match self {
            Self::MissingToken
            | Self::InvalidToken
            | Self::ExpiredToken
            | Self::RevokedToken
            | Self::UniqueTokenMismatch => Code::PermissionDenied,
            Self::TalosTooOld => Code::FailedPrecondition,
            Self::UuidConflict => Code::AlreadyExists,
            Self::LimitReached => Code::ResourceExhausted,
            Self::Unavailable => Code::Unavailable,
        }
    }
}

/// Decides whether a machine may join. The control plane implements it over its store
/// (tenant-scoped tokens, unique tokens, limits); [`crate::JoinTokenRegistry`] is an
/// in-memory implementation.
#[async_trait]
pub trait ProvisionPolicy: Send + Sync + 'static {
    /// Admits or refuses one request.
    async fn admit(&self, req: &ProvisionRequestInfo) -> Result<Admission, Refusal>;
}

#[async_trait]
impl<P: ProvisionPolicy + ?Sized> ProvisionPolicy for Arc<P> {
    async fn admit(&self, req: &ProvisionRequestInfo) -> Result<Admission, Refusal> {
        (**self).admit(req).await
    }
}

/// Settings of the provisioning server.
#[derive(Debug, Clone)]
pub struct ProvisionServerConfig {
    /// Installation id from which the overlay /64 is derived.
    pub installation_id: String,
    /// The server's WireGuard public key, base64. Ignored when a
    /// [`WireguardEndpoint`] is attached (its key is sent).
    pub server_public_key: String,
    /// WireGuard `host:port` endpoints, most preferred first. Empty with a
    /// [`WireguardEndpoint`] attached: its bound address is sent.
    pub wireguard_endpoints: Vec<String>,
}

/// Sent on the notification channel for each admitted machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionedMachine {
    /// The request.
    pub request: ProvisionRequestInfo,
    /// What the policy admitted.
    pub admission: Admission,
    /// The node's overlay address.
    pub node_address: Ipv6Addr,
}

/// The `ProvisionService` implementation.
pub struct ProvisionServer {
    policy: Arc<dyn ProvisionPolicy>,
    config: ProvisionServerConfig,
    prefix: OverlayPrefix,
    allocator: Mutex<AddressAllocator>,
    notify: Option<mpsc::Sender<ProvisionedMachine>>,
    wireguard: Option<WireguardEndpoint>,
}

impl std::fmt::Debug for ProvisionServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProvisionServer")
            .field("config", &self.config)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Failure of [`ProvisionServer::serve`], [`crate::EventSinkServer::serve`] or
/// [`crate::KmsgReceiver::serve`].
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The gRPC server stopped with an error.
    #[error("gRPC server failed")]
    Transport(#[source] tonic::transport::Error),
    /// Accepting a connection failed.
    #[error("accepting a connection failed")]
    Accept(#[source] std::io::Error),
}

impl ProvisionServer {
    /// A server admitting machines through `policy`.
    pub fn new(policy: impl ProvisionPolicy, config: ProvisionServerConfig) -> Self {
        let prefix = OverlayPrefix::for_installation(&config.installation_id);
        Self {
            policy: Arc::new(policy),
            config,
            prefix,
            allocator: Mutex::new(AddressAllocator::new(prefix)),
            notify: None,
            wireguard: None,
        }
    }

    /// Reuses a persisted allocator (for stable node addresses across restarts).
    pub fn with_allocator(mut self, allocator: AddressAllocator) -> Self {
        self.prefix = allocator.prefix();
        self.allocator = Mutex::new(allocator);
        self
    }

    /// Sends a [`ProvisionedMachine`] on `tx` for every admitted machine.
    pub fn with_notifications(mut self, tx: mpsc::Sender<ProvisionedMachine>) -> Self {
        self.notify = Some(tx);
        self
    }

    /// Admits every provisioned machine as a peer of `endpoint`, and answers
    /// with its public key (and its address, unless endpoints are configured).
    pub fn with_wireguard(mut self, endpoint: WireguardEndpoint) -> Self {
        self.wireguard = Some(endpoint);
        self
    }

    fn server_key_and_endpoints(&self) -> (String, Vec<String>) {
        match &self.wireguard {
            Some(wg) => {
                let endpoints = if self.config.wireguard_endpoints.is_empty() {
                    vec![wg.local_addr().to_string()]
                } else {
                    self.config.wireguard_endpoints.clone()
                };
                (wg.public_key().to_base64(), endpoints)
            }
            None => (
                self.config.server_public_key.clone(),
                self.config.wireguard_endpoints.clone(),
            ),
        }
    }

    /// The overlay prefix.
    pub fn prefix(&self) -> OverlayPrefix {
        self.prefix
    }

    /// Serves `/sidero.link.ProvisionService` on `listener` until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServeError> {
        tonic::transport::Server::builder()
            .add_service(ProvisionServiceServer::new(self))
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
            .await
            .map_err(ServeError::Transport)
    }

    /// Admits one request, as plain Rust (the gRPC handler wraps this).
    #[tracing::instrument(skip_all, fields(machine.id = %req.node_uuid))]
    pub async fn provision(
        &self,
        req: ProvisionRequestInfo,
    ) -> Result<ProvisionReply, ProvisionFailure> {
        if req.node_uuid.trim().is_empty() {
            return Err(ProvisionFailure::InvalidArgument("node_uuid is empty"));
        }
        let admission = match self.policy.admit(&req).await {
            Ok(a) => a,
            Err(refusal) => {
                tracing::info!(reason = %refusal, "machine refused");
                return Err(ProvisionFailure::Refused(refusal));
            }
        };
        let Ok(node_key) = PublicKey::from_base64(&req.node_public_key) else {
            return Err(ProvisionFailure::InvalidArgument("invalid node public key"));
        };
        let node_address = self
            .allocator
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .allocate(&req.node_uuid);
        if let Some(wg) = &self.wireguard {
            wg.add_peer(PeerConfig {
                public_key: node_key,
                uuid: req.node_uuid.clone(),
                unique_token: req.node_unique_token.clone(),
                overlay_address: node_address,
            });
        }
        tracing::info!(node.address = %node_address, "machine provisioned");
        let (server_public_key, server_endpoints) = self.server_key_and_endpoints();
        if let Some(tx) = &self.notify {
            let _ = tx
                .send(ProvisionedMachine {
                    request: req,
                    admission,
                    node_address,
                })
                .await;
        }
        Ok(ProvisionReply {
            server_endpoints,
            server_public_key,
            node_address_prefix: format!("{node_address}/64"),
            server_address: self.prefix.server_address(),
        })
    }
}

/// A successful provisioning answer, as plain Rust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionReply {
    /// WireGuard endpoints, most preferred first (the wire order puts it last).
    pub server_endpoints: Vec<String>,
    /// Server WireGuard public key.
    pub server_public_key: String,
    /// `addr/64`.
    pub node_address_prefix: String,
    /// Server overlay address.
    pub server_address: Ipv6Addr,
}

/// A failed provisioning call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProvisionFailure {
    /// The policy refused the machine.
    #[error("machine refused")]
    Refused(#[source] Refusal),
    /// The request is malformed. `InvalidArgument`.
    #[error("invalid provision request: {0}")]
    InvalidArgument(&'static str),
}

impl From<ProvisionFailure> for Status {
    fn from(f: ProvisionFailure) -> Self {
        match f {
            ProvisionFailure::Refused(r) => Status::new(r.code(), r.to_string()),
            ProvisionFailure::InvalidArgument(m) => Status::invalid_argument(m),
        }
    }
}

/// Encodes endpoints for the wire: old clients keep the *last* value of a repeated
/// field, so the most preferred endpoint goes last (`MakeEndpoints`).
pub fn endpoints_to_wire(preferred_first: &[String]) -> Vec<String> {
    let mut v = preferred_first.to_vec();
    if v.len() > 1 {
        let last = v.len() - 1;
        v.swap(0, last);
    }
    v
}

/// Undoes [`endpoints_to_wire`] (`GetEndpoints`).
pub fn endpoints_from_wire(wire: &[String]) -> Vec<String> {
    endpoints_to_wire(wire)
}

#[tonic::async_trait]
impl ProvisionService for ProvisionServer {
    async fn provision(
        &self,
        request: Request<ProvisionRequest>,
    ) -> Result<Response<ProvisionResponse>, Status> {
        let peer_addr = request.remote_addr();
        let r = request.into_inner();
        let info = ProvisionRequestInfo {
            node_uuid: r.node_uuid,
            node_public_key: r.node_public_key,
            join_token: r.join_token,
            node_unique_token: r.node_unique_token,
            talos_version: r.talos_version,
            wireguard_over_grpc: r.wireguard_over_grpc.unwrap_or(false),
            peer_addr,
        };
        let reply = ProvisionServer::provision(self, info).await?;
        Ok(Response::new(ProvisionResponse {
            server_endpoint: endpoints_to_wire(&reply.server_endpoints),
            server_public_key: reply.server_public_key,
            node_address_prefix: reply.node_address_prefix,
            server_address: reply.server_address.to_string(),
            grpc_peer_addr_port: String::new(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preferred_endpoint_goes_last_on_the_wire_and_comes_back_first() {
        let e = vec!["a:1".to_owned(), "b:1".to_owned(), "c:1".to_owned()];
        let w = endpoints_to_wire(&e);
        assert_eq!(w.last().map(String::as_str), Some("a:1"));
        assert_eq!(endpoints_from_wire(&w), e);
    }

    #[test]
    fn refusals_map_to_grpc_codes() {
        assert_eq!(Refusal::InvalidToken.code(), Code::PermissionDenied);
        assert_eq!(Refusal::ExpiredToken.code(), Code::PermissionDenied);
        assert_eq!(Refusal::RevokedToken.code(), Code::PermissionDenied);
        assert_eq!(Refusal::LimitReached.code(), Code::ResourceExhausted);
        assert_eq!(Refusal::TalosTooOld.code(), Code::FailedPrecondition);
    }
}
